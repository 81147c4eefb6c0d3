"""The Sandbox: one mariadbd whose files all live under its basedir; start, stop, kill, connect."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pymysql
import pymysql.connections

from binreplay.devtools.sandbox.binaries import ensure_server_binaries, install_datadir, root_flags, server_binary
from binreplay.devtools.sandbox.processes import die_with_parent, free_port, greets, server_pid

_SUN_PATH_MAX = 100          # sockaddr_un.sun_path is 108 bytes; keep a margin
_INIT_MARKER = ".initialized"
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def _opt_key(key: str) -> str:
    """Normalise option names so 'binlog_format' overrides 'binlog-format'."""
    return key.strip().lstrip("-").replace("_", "-")


@dataclass
class Sandbox:
    name: str
    basedir: Path
    port: int
    server_id: int
    log_bin: bool
    binlog_format: str = "ROW"
    options: dict[str, str | None] = field(default_factory=dict)
    # The port was picked by us, so we may pick another one if it got taken.
    auto_port: bool = False
    # SIGTERM the server when the starting thread dies (test runners).
    die_with_parent: bool = False

    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _conn: pymysql.connections.Connection | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.basedir = Path(self.basedir).resolve()
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(f"sandbox name must match {_NAME_RE.pattern}: {self.name!r}")

    # ---- paths -----------------------------------------------------------

    @property
    def datadir(self) -> Path:
        return self.basedir / "data"

    @property
    def socket(self) -> Path:
        path = self.basedir / "sandbox.sock"
        if len(str(path)) <= _SUN_PATH_MAX:
            return path
        # Deep basedirs overflow sun_path; use a short, stable name instead.
        digest = hashlib.sha1(str(self.basedir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"binreplay-{digest}.sock"

    @property
    def pid_file(self) -> Path:
        return self.basedir / "pid"

    @property
    def error_log(self) -> Path:
        return self.basedir / "error.log"

    def binlog_dir(self) -> Path:
        return self.basedir / "binlog"

    def binlog_index(self) -> Path:
        return self.binlog_dir() / f"{self.name}-bin.index"

    def binlog_files(self) -> list[Path]:
        """Binlog files in server order, read from the server's index file."""
        if not self.log_bin or not self.binlog_index().exists():
            return []
        files = []
        for line in self.binlog_index().read_text().splitlines():
            line = line.strip()
            if line:
                # Entries are absolute here (log-bin is absolute), but resolve
                # relative ones against the datadir like the server does.
                files.append((self.datadir / line).resolve())
        return files

    # ---- lifecycle -------------------------------------------------------

    def initialize(self) -> None:
        """Create the datadir with mariadb-install-db unless already done."""
        marker = self.basedir / _INIT_MARKER
        if marker.exists():
            return
        if self.datadir.exists():
            shutil.rmtree(self.datadir)  # a half-finished earlier attempt
        self.basedir.mkdir(parents=True, exist_ok=True)
        install_datadir(self.datadir, self.name)
        marker.touch()

    def server_args(self) -> list[str]:
        """The full mariadbd command line."""
        opts: dict[str, str | None] = {
            "datadir": str(self.datadir),
            "socket": str(self.socket),
            "port": str(self.port),
            "bind-address": "127.0.0.1",
            "pid-file": str(self.pid_file),
            "log-error": str(self.error_log),
            "server-id": str(self.server_id),
            "innodb-buffer-pool-size": "256M",
            "innodb-log-file-size": "64M",
            # the server's default max_allowed_packet (16M) stays: replay must fit real limits
            "tmpdir": str(self.basedir / "tmp"),
            "skip-name-resolve": None,
            "character-set-server": "utf8mb4",
            "collation-server": "utf8mb4_general_ci",
        }
        if self.log_bin:
            opts |= {
                "log-bin": str(self.binlog_dir() / f"{self.name}-bin"),
                "log-bin-index": str(self.binlog_index()),
                "binlog-format": self.binlog_format,
                "binlog-row-metadata": "FULL",
                "binlog-row-image": "FULL",
            }
        else:
            opts["skip-log-bin"] = None
        opts |= {_opt_key(k): v for k, v in self.options.items()}
        flags = [f"--{k}" if v is None else f"--{k}={v}" for k, v in opts.items()]
        # --no-defaults must come first.
        return [server_binary("mariadbd"), "--no-defaults", *flags, *root_flags()]

    def start(self, timeout: float = 60) -> None:
        """Start the server (no-op when running) and wait until it accepts connections."""
        if self.is_running():
            self._wait_ready(timeout)
            return
        self.initialize()
        (self.basedir / "tmp").mkdir(parents=True, exist_ok=True)
        if self.log_bin:
            self.binlog_dir().mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            log_offset = self._error_log_size()
            self._spawn()
            try:
                self._wait_ready(timeout)
                return
            except RuntimeError:
                if self.auto_port and "Address already in use" in self._error_log_since(log_offset):
                    self.port = free_port()  # lost a race for the port: try another
                    continue
                raise
        raise RuntimeError(f"sandbox {self.name}: no free TCP port after several tries")

    def _spawn(self) -> None:
        self.socket.unlink(missing_ok=True)  # stale after a kill
        with open(self.basedir / "mariadbd.out", "ab") as out:
            self._proc = subprocess.Popen(
                self.server_args(),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                # Own process group: Ctrl-C in the caller's terminal does not
                # reach the server; we stop it ourselves.
                start_new_session=True,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(
                    f"sandbox {self.name}: mariadbd exited with {code} during start; "
                    f"{self.error_log}:\n{self._error_log_tail()}"
                )
            if greets(self.socket):
                self.connect(connect_timeout=5).close()  # and really logs us in
                return
            if time.monotonic() > deadline:
                if self._proc is not None:
                    self.kill()  # ours and hung: do not leave it behind
                raise RuntimeError(
                    f"sandbox {self.name}: not ready after {timeout}s; "
                    f"{self.error_log}:\n{self._error_log_tail()}"
                )
            time.sleep(0.03)

    def stop(self, timeout: float = 60) -> None:
        """Clean shutdown: SHUTDOWN statement, then SIGTERM, then SIGKILL."""
        self._close_cached()
        if not self.is_running():
            return
        try:
            with self.connect(connect_timeout=5) as conn:
                conn.cursor().execute("SHUTDOWN")
        except pymysql.Error:
            pass  # the server may drop the connection before replying
        if self._wait_exit(timeout):
            return
        self._signal(signal.SIGTERM)
        if self._wait_exit(timeout):
            return
        self.kill()

    def kill(self) -> None:
        """SIGKILL the server (simulates a crash); the datadir is kept for a restart."""
        self._close_cached()
        if self.is_running():
            self._signal(signal.SIGKILL)
            self._wait_exit(30)
        self._proc = None

    def is_running(self) -> bool:
        if self._proc is not None:
            if self._proc.poll() is None:
                return True
            self._proc = None  # reaped: fall through to the pid-file check
        pid = self._foreign_pid()
        return pid is not None

    def server_pid(self) -> int | None:
        """Pid of the running server, whichever process started it; None when it is not running."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return self._foreign_pid()

    def _foreign_pid(self) -> int | None:
        """Pid of a server on our datadir started by someone else (another process)."""
        return server_pid(self.pid_file, self.datadir)

    def _signal(self, sig: signal.Signals) -> None:
        try:
            if self._proc is not None:
                os.killpg(self._proc.pid, sig)
            elif (pid := self._foreign_pid()) is not None:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _wait_exit(self, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            self._proc = None
            return True
        deadline = time.monotonic() + timeout
        while self._foreign_pid() is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.03)
        return True

    def _error_log_size(self) -> int:
        try:
            return self.error_log.stat().st_size
        except OSError:
            return 0

    def _error_log_since(self, offset: int) -> str:
        try:
            with open(self.error_log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _error_log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._error_log_since(0).splitlines()[-lines:])

    # ---- clients ---------------------------------------------------------

    def connect(self, database: str | None = None, **kw: Any) -> pymysql.connections.Connection:
        """A new root connection over the unix socket (autocommit, utf8mb4)."""
        params: dict[str, Any] = dict(
            unix_socket=str(self.socket), user="root", password="",
            database=database, autocommit=True, charset="utf8mb4",
        )
        params.update(kw)
        return pymysql.connect(**params)

    def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement on a cached connection and return all rows.

        Not thread-safe. With no args the SQL is sent verbatim (a '%' is safe).
        """
        with self._cached_connection().cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())

    def _cached_connection(self) -> pymysql.connections.Connection:
        if self._conn is not None:
            try:
                self._conn.ping(reconnect=False)
            except pymysql.Error:
                self._close_cached()  # e.g. the server was restarted
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def _close_cached(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.Error):
                self._conn.close()
            self._conn = None

    def master_status(self) -> tuple[str, int]:
        """(binlog file basename, position) from SHOW MASTER STATUS."""
        rows = self.execute("SHOW MASTER STATUS")
        if not rows:
            raise RuntimeError(f"sandbox {self.name} has no binary log (log_bin=False)")
        return str(rows[0][0]), int(rows[0][1])

    def client_args(self) -> list[str]:
        """Connection arguments for the mariadb / mariadb-dump command-line clients."""
        return [
            "--no-defaults", "-uroot", f"--socket={self.socket}", "--protocol=socket",
            "--default-character-set=utf8mb4",
        ]

    def connection_flags(self) -> list[str]:
        """Connection flags for `binreplay replay`."""
        return ["-S", str(self.socket), "-u", "root"]

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def create_sandbox(
    basedir: Path, *, name: str, server_id: int = 1, log_bin: bool = False,
    binlog_format: str = "ROW", port: int | None = None,
    options: dict[str, str | None] | None = None, start: bool = True,
    die_with_parent: bool = False,
) -> Sandbox:
    """Create (or reuse, if already initialised) a sandbox under basedir and start it.

    ``options`` adds or overrides mariadbd options (``--key=value``; a None value
    gives a bare ``--key``). ``port=None`` picks a free 127.0.0.1 port.
    """
    ensure_server_binaries()
    sandbox = Sandbox(
        name=name, basedir=Path(basedir), port=port or free_port(), server_id=server_id,
        log_bin=log_bin, binlog_format=binlog_format, options=dict(options or {}),
        auto_port=port is None, die_with_parent=die_with_parent,
    )
    sandbox.basedir.mkdir(parents=True, exist_ok=True)
    sandbox.initialize()
    if start:
        sandbox.start()
    return sandbox
