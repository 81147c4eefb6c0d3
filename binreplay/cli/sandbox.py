"""`binreplay sandbox start|stop|status`: throwaway MariaDB servers that outlive the command.

Each sandbox lives in ``DIR/NAME`` (see binreplay.devtools.sandbox for its layout). ``start`` records the
settings it used in ``DIR/NAME/sandbox.json`` so that ``stop`` and ``status``, run later from
another process, can find the server again; the server itself is found through its pid file.
"""

from __future__ import annotations

import json
import os
import shutil
import socket as socketlib
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from binreplay.cli.app import main
from binreplay.devtools.sandbox import Sandbox, create_sandbox
from binreplay.errors import TargetError, UsageError

SETTINGS_FILE = "sandbox.json"
DIR_ENV = "BINREPLAY_SANDBOX_DIR"


def default_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or Path.home() / ".binreplay" / "sandboxes")


@dataclass
class SandboxSettings:
    """What `sandbox start` chose; enough to rebuild the Sandbox object in a later process."""

    name: str
    port: int
    server_id: int
    log_bin: bool

    @classmethod
    def load(cls, basedir: Path) -> SandboxSettings | None:
        try:
            raw = json.loads((basedir / SETTINGS_FILE).read_text())
            return cls(name=str(raw["name"]), port=int(raw["port"]), server_id=int(raw["server_id"]),
                       log_bin=bool(raw["log_bin"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, basedir: Path) -> None:
        (basedir / SETTINGS_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    def sandbox(self, basedir: Path) -> Sandbox:
        return Sandbox(name=self.name, basedir=basedir, port=self.port, server_id=self.server_id,
                       log_bin=self.log_bin)


def _port_free(port: int) -> bool:
    with socketlib.socket(socketlib.AF_INET, socketlib.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _basedir(root: Path, name: str) -> Path:
    try:
        Sandbox(name=name, basedir=root / "x", port=0, server_id=1, log_bin=False)  # validates the name
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return (root / name).resolve()


def _conflicts(recorded: SandboxSettings, port: int | None, log_bin: bool | None,
               server_id: int | None) -> list[str]:
    wanted = {"--port": (port, recorded.port), "--server-id": (server_id, recorded.server_id),
              "--log-bin/--no-log-bin": (log_bin, recorded.log_bin)}
    return [f"{flag} (running with {have})" for flag, (want, have) in wanted.items()
            if want is not None and want != have]


def start_sandbox(root: Path, name: str, port: int | None, log_bin: bool | None,
                  server_id: int | None) -> tuple[Sandbox, bool]:
    """Start (or find running) sandbox NAME; returns it and whether it was already running.

    Unset flags take the values recorded by an earlier start (a restart keeps the port when it
    is still free); a running sandbox asked for different settings is a usage error."""
    basedir = _basedir(root, name)
    recorded = SandboxSettings.load(basedir)
    if recorded is not None:
        existing = recorded.sandbox(basedir)
        if existing.is_running():
            if conflicts := _conflicts(recorded, port, log_bin, server_id):
                raise UsageError(f"sandbox {name} is already running with other settings: "
                                 f"{', '.join(conflicts)}; stop it first")
            return existing, True
        if port is None and _port_free(recorded.port):
            port = recorded.port
    use_log_bin = log_bin if log_bin is not None else (recorded.log_bin if recorded else True)
    use_server_id = server_id or (recorded.server_id if recorded else 1)
    try:
        sandbox = create_sandbox(basedir, name=name, server_id=use_server_id, log_bin=use_log_bin,
                                 port=port, die_with_parent=False)
    except RuntimeError as exc:  # binaries missing, mariadbd refused to start, port taken
        raise TargetError(str(exc).splitlines()[0] + f" (server log: {basedir / 'error.log'})") from None
    SandboxSettings(name=name, port=sandbox.port, server_id=use_server_id, log_bin=use_log_bin).save(basedir)
    return sandbox, False


def stop_sandbox(root: Path, name: str, purge: bool) -> str:
    """Stop sandbox NAME (and with purge delete its directory); returns what was done."""
    basedir = _basedir(root, name)
    recorded = SandboxSettings.load(basedir)
    if recorded is None:
        raise UsageError(f"no sandbox {name} under {root}")
    sandbox = recorded.sandbox(basedir)
    was_running = sandbox.is_running()
    sandbox.stop()
    if sandbox.is_running():
        raise TargetError(f"sandbox {name} did not stop; see {sandbox.error_log}")
    done = "stopped" if was_running else "was not running"
    if purge:
        sandbox.socket.unlink(missing_ok=True)  # may live in /tmp for deep dirs
        shutil.rmtree(basedir)
        done += f"; removed {basedir}"
    return done


@dataclass
class SandboxState:
    name: str
    running: bool
    pid: int | None
    port: int
    socket: str
    log_bin: bool
    server_id: int
    basedir: str


def list_sandboxes(root: Path) -> list[SandboxState]:
    states = []
    for basedir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        recorded = SandboxSettings.load(basedir)
        if recorded is None:
            continue
        sandbox = recorded.sandbox(basedir.resolve())
        running = sandbox.is_running()
        states.append(SandboxState(name=recorded.name, running=running,
                                   pid=sandbox.server_pid() if running else None, port=recorded.port,
                                   socket=str(sandbox.socket), log_bin=recorded.log_bin,
                                   server_id=recorded.server_id, basedir=str(sandbox.basedir)))
    return states


def connection_text(sandbox: Sandbox, already: bool) -> str:
    state = "already running" if already else "started"
    lines = [
        f"sandbox {sandbox.name} {state} (data in {sandbox.basedir})",
        f"  socket: -S {sandbox.socket} -u root",
        f"  tcp:    -h 127.0.0.1 -P {sandbox.port} -u root",
        f"  client: mariadb --no-defaults -S {sandbox.socket} -u root",
    ]
    if sandbox.log_bin:
        lines.append(f"  binlog: {sandbox.binlog_index()}")
    lines.append(f"  stop:   binreplay sandbox stop {sandbox.name} --dir {sandbox.basedir.parent}")
    return "\n".join(lines)


_dir_option = click.option(
    "--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help=f"Directory holding the sandboxes  [default: ${DIR_ENV} or ~/.binreplay/sandboxes].")


@main.group("sandbox")
def sandbox_group() -> None:
    """Throwaway local MariaDB servers (for rehearsing a restore, or as a scratch target)."""


@sandbox_group.command("start")
@click.argument("name")
@_dir_option
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="TCP port on 127.0.0.1  [default: the one used before if free, else a free one].")
@click.option("--log-bin/--no-log-bin", default=None,
              help="Write a binary log (ROW, binlog_row_metadata=FULL)  [default: on, or as before].")
@click.option("--server-id", type=click.IntRange(1, (1 << 32) - 1), default=None,
              help="server_id  [default: 1, or as before].")
def start_cmd(name: str, root: Path | None, port: int | None, log_bin: bool | None,
              server_id: int | None) -> None:
    """Start sandbox NAME (created on first use) and print how to connect; it keeps running
    after this command exits. Starting a running sandbox only prints its flags. Its root user
    has no password and listens on 127.0.0.1: for rehearsals on a trusted machine only."""
    sandbox, already = start_sandbox((root or default_dir()).resolve(), name, port, log_bin, server_id)
    click.echo(connection_text(sandbox, already))


@sandbox_group.command("stop")
@click.argument("name")
@_dir_option
@click.option("--purge", is_flag=True, help="Also delete the sandbox's directory (data, binlogs, logs).")
def stop_cmd(name: str, root: Path | None, purge: bool) -> None:
    """Shut sandbox NAME down cleanly."""
    click.echo(f"sandbox {name}: {stop_sandbox((root or default_dir()).resolve(), name, purge)}")


@sandbox_group.command("status")
@_dir_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="A table, or one JSON document.")
def status_cmd(root: Path | None, output_format: str) -> None:
    """List the sandboxes under the directory: running or not, pid, port, socket."""
    root = (root or default_dir()).resolve()
    states = list_sandboxes(root)
    if output_format == "json":
        click.echo(json.dumps([asdict(s) for s in states], indent=2))
        return
    if not states:
        click.echo(f"no sandboxes under {root}")
        return
    click.echo(f"{'NAME':<16} {'STATE':<8} {'PID':>7} {'PORT':>5}  LOG-BIN  SOCKET")
    for s in states:
        click.echo(f"{s.name:<16} {'running' if s.running else 'stopped':<8} {s.pid or '-':>7} {s.port:>5}  "
                   f"{'on' if s.log_bin else 'off':<7}  {s.socket}")
