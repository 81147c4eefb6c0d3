"""`binreplay demo`: a point-in-time restore on local sandbox servers, with no configuration.

Starts a source (binlog on) and two targets, builds a shop database, takes a
mariadb-dump backup, runs a workload, plans the replay (`binreplay plan`), then
replays the binlogs into one target with `mariadb-binlog | mariadb` and into the
other with binreplay, verifies both against the source with `binreplay verify`
(chunked checksums, table by table), and prints the timings.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from binreplay.commands.verify import VerifyOptions, human_report, verdict, verify
from binreplay.devtools.sandbox import Sandbox, create_sandbox, ensure_server_binaries
from binreplay.devtools.workload import create_base, run_workload
from binreplay.report.progress import make_reporter
from binreplay.run import ReplayOptions, run_replay
from binreplay.server.connection import ServerConfig
from binreplay.source.backup_meta import read_backup_coordinates


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def take_backup(source: Sandbox, path: Path) -> None:
    with open(path, "wb") as out:
        subprocess.run(["mariadb-dump", *source.client_args(), "--single-transaction", "--master-data=2",
                        "--routines", "--triggers", "--databases", "shop"], stdout=out, check=True)


def restore(target: Sandbox, backup: Path) -> None:
    with open(backup, "rb") as f:
        subprocess.run(["mariadb", *target.client_args()], stdin=f, check=True)


def pipe_replay(source: Sandbox, target: Sandbox, files: list[Path], start_pos: int) -> float:
    """The standard path, timed: mariadb-binlog --start-position=P files... | mariadb."""
    t0 = time.monotonic()
    dump = subprocess.Popen(["mariadb-binlog", f"--start-position={start_pos}", *map(str, files)],
                            stdout=subprocess.PIPE)
    client = subprocess.run(["mariadb", *target.client_args()], stdin=dump.stdout)
    dump.wait()
    if dump.returncode or client.returncode:
        raise RuntimeError("mariadb-binlog | mariadb failed")
    return time.monotonic() - t0


def _config(server: Sandbox) -> ServerConfig:
    return ServerConfig(socket=str(server.socket), user="root")


def run_demo(transactions: int = 5000, workdir: Path | None = None, keep: bool = False) -> int:
    ensure_server_binaries()
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="binreplay-demo-"))
    servers: list[Sandbox] = []
    try:
        _say(f"starting sandbox servers under {base}")
        source = create_sandbox(base / "source", name="source", server_id=1, log_bin=True,
                                options={"innodb_flush_log_at_trx_commit": "2", "sync_binlog": "0"},
                                die_with_parent=True)
        servers.append(source)
        pipe_target = create_sandbox(base / "pipe", name="pipe", server_id=2, die_with_parent=True)
        servers.append(pipe_target)
        target = create_sandbox(base / "target", name="target", server_id=3, die_with_parent=True)
        servers.append(target)
        _say("building the shop database and taking a mariadb-dump --master-data=2 backup")
        with source.connect() as conn:
            create_base(conn)
        backup = base / "backup.sql"
        take_backup(source, backup)
        coords = read_backup_coordinates(backup)
        _say(f"backup taken at {coords.binlog_file}:{coords.position}; restoring it into both targets")
        restore(pipe_target, backup)
        restore(target, backup)
        _say(f"running {transactions} source transactions after the backup (with a DDL and binlog rotations)")
        with source.connect() as conn:
            run_workload(conn, transactions, rotate_every=max(transactions // 3, 1), ddl_at=transactions // 2)
        files = [f for f in source.binlog_files() if f.name >= (coords.binlog_file or "")]
        _say("binreplay plan (reads the binlogs only):")
        subprocess.run([sys.executable, "-m", "binreplay", "plan", "--from-backup", str(backup), "--top", "3",
                        *map(str, files)], check=False)
        _say(f"replaying {len(files)} binlog file(s) with mariadb-binlog | mariadb ...")
        t_pipe = pipe_replay(source, pipe_target, files, coords.position or 4)
        _say(f"  done in {t_pipe:.1f}s")
        _say("replaying the same binlogs with binreplay --from-backup ...")
        opts = ReplayOptions(binlogs=files, target=_config(target), from_backup=backup)
        reporter = make_reporter("auto")
        t0 = time.monotonic()
        summary = run_replay(opts, reporter)
        t_binreplay = time.monotonic() - t0
        reporter.finish(summary)
        _say("verifying both targets against the source with binreplay verify (chunked checksums per table)")
        reports = {}
        for label, server in (("mariadb-binlog | mariadb", pipe_target), ("binreplay", target)):
            reports[label] = verify(VerifyOptions(target=_config(server), reference=_config(source),
                                                  databases=("shop",), progress=False))
            _say(f"  {label}: {verdict(reports[label])}")
        print()
        print(f"  {'method':<28}{'seconds':>10}{'trx/s':>10}{'vs pipe':>10}  verify")
        for label, secs in (("mariadb-binlog | mariadb", t_pipe), ("binreplay", t_binreplay)):
            diffs = reports[label].differences
            result = "identical to source" if not diffs else f"{len(diffs)} table(s) differ"
            print(f"  {label:<28}{secs:>10.2f}{summary.applied / secs:>10.0f}{t_pipe / secs:>9.2f}x  {result}")
        print()
        diffs = reports["binreplay"].differences
        if diffs:
            print(human_report(reports["binreplay"]))
        return 0 if not diffs else 1
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - best effort: report it and stop the others
                print(f"[demo] could not stop {s.name}: {exc}", file=sys.stderr)
        if not keep and workdir is None:
            shutil.rmtree(base, ignore_errors=True)
