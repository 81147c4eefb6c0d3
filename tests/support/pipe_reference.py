"""The reference a replay is judged by: `mariadb-binlog | mariadb` into the same restored backup.

A case takes a backup of the source (a dump file with its binlog coordinates), runs its workload,
then `exact_as_pipe` restores the backup into the target and replays it serially with the pipe,
takes a snapshot of everything a replay can change (tables by definition and content, triggers,
routines, events, views, accounts), and for each worker count and apply mode restores the backup
again, runs binreplay (optionally killed with -9 at a crash point, then rerun) and compares its
snapshot with the pipe's. No third server: the target plays both parts in turn.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.devtools.compare import normalized_table_ddl
from binreplay.devtools.sandbox import Sandbox
from binreplay.server.sql import SYSTEM_SCHEMAS, quote_ident

from helpers import binlogs_from, reset_server, run_binreplay  # noqa: F401 - reset_server for callers

PROGRESS_SCHEMA = "binreplay"
MODES = ("binlog", "sql")
WORKERS = (1, 8)


@dataclass(frozen=True)
class Backup:
    """A dump file and the source binlog coordinates it is consistent with."""

    path: Path
    file: str
    pos: int

    def restore(self, target: Sandbox) -> None:
        """The target as it was right after restoring this backup (user schemas and accounts dropped first)."""
        target.execute("SET SESSION foreign_key_checks = 0")
        for (schema,) in target.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"):
            if schema not in SYSTEM_SCHEMAS:
                target.execute(f"DROP DATABASE {quote_ident(schema)}")
        target.execute("SET SESSION foreign_key_checks = 1")
        for user, host, is_role in target.execute(
                "SELECT User, Host, is_role FROM mysql.user WHERE User LIKE 'replayed%'"):
            target.execute(f"DROP {'ROLE' if is_role == 'Y' else 'USER'} "
                           + (f"'{user}'" if is_role == "Y" else f"'{user}'@'{host}'"))
        with open(self.path, "rb") as f:
            subprocess.run(["mariadb", *target.client_args()], stdin=f, check=True, capture_output=True)


def take_backup(source: Sandbox, schemas: Iterable[str], path: Path) -> Backup:
    """`mariadb-dump --master-data=2` of `schemas`, as a DBA's backup."""
    out = subprocess.run(["mariadb-dump", *source.client_args(), "--single-transaction", "--master-data=2",
                          "--routines", "--triggers", "--events", "--hex-blob", "--databases", *schemas],
                         capture_output=True, check=True)
    path.write_bytes(out.stdout)
    import re

    m = re.search(rb"MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)", out.stdout[:1 << 20])
    assert m, "the dump has no binlog coordinates"
    return Backup(path, m.group(1).decode(), int(m.group(2)))


# ---- what a replay can change -------------------------------------------------------

def snapshot(server: Sandbox) -> dict[str, object]:
    """Everything of the server's user schemas and accounts a replay can change, comparable by `==`:
    table definitions (without AUTO_INCREMENT=) and rows (sorted), triggers, routines, events,
    views, and accounts whose name starts with 'replayed' (tests create those)."""
    out: dict[str, object] = {}
    schemas = [s for (s,) in server.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
               if s not in SYSTEM_SCHEMAS and s != PROGRESS_SCHEMA]
    out["schemas"] = sorted(schemas)
    for schema in sorted(schemas):
        for name, kind in server.execute(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                "ORDER BY TABLE_NAME", schema):
            q = f"{quote_ident(schema)}.{quote_ident(name)}"
            if kind == "VIEW":
                out[f"view {schema}.{name}"] = server.execute(
                    "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
                    schema, name)
                continue
            out[f"table {schema}.{name}"] = normalized_table_ddl(server.execute(f"SHOW CREATE TABLE {q}")[0][1])
            out[f"rows {schema}.{name}"] = sorted(server.execute(f"SELECT * FROM {q}"), key=repr)
        out[f"triggers {schema}"] = server.execute(
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT "
            "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA=%s ORDER BY TRIGGER_NAME", schema)
        out[f"routines {schema}"] = server.execute(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA=%s ORDER BY ROUTINE_NAME", schema)
        out[f"events {schema}"] = server.execute(
            "SELECT EVENT_NAME, EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_SCHEMA=%s "
            "ORDER BY EVENT_NAME", schema)
    out["accounts"] = sorted(server.execute(
        "SELECT User, Host, is_role FROM mysql.user WHERE User LIKE 'replayed%'"))
    return out


def differences(reference: dict[str, object], got: dict[str, object]) -> list[str]:
    diffs = []
    for key in sorted(set(reference) | set(got)):
        if reference.get(key) != got.get(key):
            diffs.append(f"{key}: pipe {_short(reference.get(key))} / binreplay {_short(got.get(key))}")
    return diffs


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


# ---- the two replays -------------------------------------------------------------------

def pipe_replay(target: Sandbox, files: list[str], start_pos: int, *binlog_args: str) -> None:
    """`mariadb-binlog --start-position=P files | mariadb` (what a DBA runs without binreplay)."""
    dump = subprocess.run(["mariadb-binlog", f"--start-position={start_pos}", *binlog_args, *files],
                          capture_output=True, check=True)
    load = subprocess.run(["mariadb", *target.client_args()], input=dump.stdout, capture_output=True)
    assert load.returncode == 0, f"the pipe failed: {load.stderr.decode(errors='replace')[-2000:]}"


@dataclass
class Outcome:
    """One binreplay run (and its rerun after a crash) and what the target held afterwards."""

    workers: int
    mode: str
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    snapshot: dict[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"--workers {self.workers} --apply {self.mode}"


def binreplay_replay(target: Sandbox, files: list[str], start_pos: int, workers: int, mode: str,
                     *extra: str, crash_at: str | None = None) -> Outcome:
    """binreplay into `target`; with `crash_at` ("point:n", see devtools/faults.py) the first run
    SIGKILLs itself there and the same command is run again, as a DBA would after a crash."""
    outcome = Outcome(workers, mode)
    args = ["replay", *files, *target.connection_flags(), "--start-position", str(start_pos),
            "--workers", str(workers), "--apply", mode, "--progress", "none", *extra]
    if crash_at is not None:
        first = run_binreplay(*args, env={"BINREPLAY_CRASH_AT": crash_at})
        outcome.runs.append(first)
        assert first.returncode == -9, (f"{outcome.label}: expected the crash at {crash_at}, got exit "
                                        f"{first.returncode}\n{first.stderr[-3000:]}")
    outcome.runs.append(run_binreplay(*args))
    return outcome


def exact_as_pipe(source: Sandbox, target: Sandbox, backup: Backup, *extra: str,
                  workers: Iterable[int] = WORKERS, modes: Iterable[str] = MODES,
                  crash_at: str | None = None, binlog_args: tuple[str, ...] = ()) -> list[Outcome]:
    """Replay the source's binlogs since `backup` with the pipe, then with binreplay at every worker
    count and apply mode (same `extra` flags), and assert each ends exactly where the pipe ended
    (exit 0, same snapshot). `binlog_args` are the pipe's equivalents of `extra` (e.g. a stop bound)."""
    def succeeded(outcome: Outcome) -> None:
        last = outcome.runs[-1]
        assert last.returncode == 0, f"{outcome.label}: exit {last.returncode}\n{last.stderr[-3000:]}"

    return _against_the_pipe(target, backup, binlogs_from(source, backup.file), binlog_args, succeeded, "the pipe",
                             extra, workers, modes, crash_at)


def refused_where_pipe_stops(source: Sandbox, target: Sandbox, backup: Backup, stop: tuple[str, int],
                             exit_code: int, fragments: Iterable[str], *extra: str,
                             workers: Iterable[int] = WORKERS, modes: Iterable[str] = ("sql",),
                             crash_at: str | None = None) -> list[Outcome]:
    """binreplay must refuse to go on (exit `exit_code`, one line holding every fragment) and leave
    the target exactly where the pipe stops with `--stop-position` at `stop` (file name, position):
    everything before applied, nothing after. With `crash_at`, the rerun after the kill must."""
    def refused(outcome: Outcome) -> None:
        last = outcome.runs[-1]
        lines = [line for line in last.stderr.splitlines() if line.strip()]
        assert last.returncode == exit_code and len(lines) == 1, (
            f"{outcome.label}: expected one error line and exit {exit_code}, got exit {last.returncode}\n"
            f"{last.stderr[-3000:]}")
        missing = [f for f in fragments if f not in lines[0]]
        assert not missing, f"{outcome.label}: {missing} not in {lines[0]}"

    files = [f for f in binlogs_from(source, backup.file) if Path(f).name <= stop[0]]
    return _against_the_pipe(target, backup, files, (f"--stop-position={stop[1]}",), refused,
                             f"the pipe stopped at {stop}", extra, workers, modes, crash_at)


def _against_the_pipe(target: Sandbox, backup: Backup, files: list[str], binlog_args: tuple[str, ...],
                      check: Callable[[Outcome], None], reference_name: str, extra: tuple[str, ...],
                      workers: Iterable[int], modes: Iterable[str], crash_at: str | None) -> list[Outcome]:
    """The pipe's snapshot, then binreplay into a fresh restore per apply mode and worker count: each
    run's outcome passes `check` and its snapshot equals the pipe's."""
    backup.restore(target)
    pipe_replay(target, files, backup.pos, *binlog_args)
    reference = snapshot(target)
    outcomes = []
    for mode in modes:
        for n in workers:
            backup.restore(target)
            target.execute(f"DROP DATABASE IF EXISTS {PROGRESS_SCHEMA}")
            outcome = binreplay_replay(target, files, backup.pos, n, mode, *extra, crash_at=crash_at)
            check(outcome)
            outcome.snapshot = snapshot(target)
            diffs = differences(reference, outcome.snapshot)
            assert not diffs, f"{outcome.label} differs from {reference_name}:\n  " + "\n  ".join(diffs[:20])
            outcomes.append(outcome)
    return outcomes
