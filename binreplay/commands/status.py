"""`binreplay status`: where the last replay into a target stands, read from its progress tables.

Read-only. The run's own records say what it replays and how far it got (state/readback.py); the
named lock a running replay holds says whether it is still alive, so a run recorded as
`running` whose lock is free is one that crashed or was killed.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pymysql

from binreplay.errors import TargetError, describe
from binreplay.server.connection import ServerConfig, connect
from binreplay.source.reader import BinlogReader
from binreplay.state.readback import ProgressReadback
from binreplay.times import shown_time

# The replay flags a run records (runs.arguments), in the order a command line gives them.
_REPLAY_FLAGS = ("from_backup", "start_position", "start_datetime", "start_gtid", "include_gtids", "exclude_gtids",
                 "stop_position", "stop_datetime", "stop_gtid")
# Repeatable flags, recorded as lists (filters.Filters.arguments): argument -> flag.
_REPEATED_FLAGS = {"databases": "--database", "ignore_databases": "--ignore-database", "tables": "--table",
                   "ignore_tables": "--ignore-table", "rewrite_db": "--rewrite-db"}


@dataclass
class SourceTransaction:
    """A transaction looked up in the binlogs (when status is given them)."""
    position: str          # file:end position
    gtid: str | None
    source_time: str       # its first event's timestamp (local time with its offset, binreplay.times)


@dataclass
class RunStatus:
    schema: str
    state: str                             # none, active, complete, incomplete, abandoned
    run_id: int | None = None
    recorded_state: str | None = None      # runs.state as the run left it
    arguments: dict = field(default_factory=dict)
    binlog_files: list[str] = field(default_factory=list)
    started_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    host: str | None = None
    pid: int | None = None
    last_error: str | None = None
    low_water_mark: str | None = None      # file:pos; everything up to it is applied
    transactions_to_mark: int = 0          # transactions read (applied or outside the selection) up to the mark
    applied_above_mark: int = 0            # applied transactions beyond the mark (not yet folded into it)
    last_applied: dict | None = None       # the furthest applied transaction above the mark
    mark_transaction: SourceTransaction | None = None
    next_transaction: SourceTransaction | None = None
    pending_ddl: list[dict] = field(default_factory=list)
    active_connection: int | None = None   # the connection holding the run's lock
    active_client: str | None = None
    resume_command: str | None = None

    @property
    def message(self) -> str:
        if self.state == "incomplete" and self.recorded_state == "failed":
            # Whether a rerun can succeed depends on the error: its line said so (errors.advice).
            return "the last run stopped with an error (below): once its cause is fixed, rerunning resumes it"
        return {
            "none": "no binreplay run recorded on this target",
            "active": "a replay is running now",
            "complete": "the last run finished: everything up to its stop point is applied",
            "incomplete": "the last run did not finish: rerun the same command to resume it",
            "abandoned": "the last run was abandoned (--restart); no run is in progress",
        }[self.state]


def _shown(value: datetime | None) -> str | None:
    """A time the server recorded in UTC, shown like every time binreplay shows (binreplay.times)."""
    return shown_time(value.replace(tzinfo=UTC).timestamp()) if value is not None else None


def read_status(cfg: ServerConfig, schema: str = "binreplay", binlogs: list[Path] | None = None) -> RunStatus:
    conn = connect(cfg.resolved(), multi_statements=False)
    try:
        return _Reader(ProgressReadback(conn, schema), cfg).status(binlogs or [])
    except pymysql.err.MySQLError as exc:
        raise TargetError(f"target {cfg.where}: {describe(exc)}") from None
    finally:
        conn.close()


class _Reader:
    def __init__(self, progress: ProgressReadback, cfg: ServerConfig) -> None:
        self.progress, self.schema, self.cfg = progress, progress.schema, cfg

    def status(self, binlogs: list[Path]) -> RunStatus:
        st = RunStatus(self.schema, "none")
        run = self.progress.last_run()
        if run is None:
            return st
        st.run_id, st.recorded_state, st.arguments = run.run_id, run.state, run.arguments
        st.binlog_files = run.binlog_files
        st.started_at, st.updated_at, st.finished_at = (_shown(t)
                                                         for t in (run.started_at, run.updated_at, run.finished_at))
        st.host, st.pid, st.last_error = run.host, run.pid, run.last_error
        self._progress(st, run.run_id)
        self._activity(st)
        binlogs = binlogs or recorded_binlogs(st)
        self._look_up_mark(st, binlogs)
        st.state = ("active" if st.active_connection is not None else
                    st.recorded_state if st.recorded_state in ("complete", "abandoned") else "incomplete")
        if st.state == "incomplete":
            st.resume_command = resume_command(st, self.cfg, binlogs)
        return st

    def _progress(self, st: RunStatus, run_id: int) -> None:
        mark = self.progress.low_water_mark(run_id)
        if mark is not None:
            st.low_water_mark, st.transactions_to_mark = f"{mark.binlog_file}:{mark.pos}", mark.transactions
        st.applied_above_mark = self.progress.applied_above(run_id, mark)
        last = self.progress.furthest_applied(run_id, mark)
        if last is not None:
            st.last_applied = {"position": f"{last.binlog_file}:{last.end_pos}", "gtid": last.gtid,
                               "applied_at": _shown(last.applied_at)}
        st.pending_ddl = [{"position": f"{d.binlog_file}:{d.end_pos}",
                           "statement": d.statement.decode("utf-8", "replace")[:200],
                           "started_at": _shown(d.started_at)}
                          for d in self.progress.pending_ddl(run_id)]

    def _activity(self, st: RunStatus) -> None:
        holder = self.progress.lock_holder()
        if holder is None:
            return
        st.active_connection = holder.connection_id
        if holder.client is not None:
            c = holder.client
            st.active_client = f"{c.user}@{c.host}, connected {c.connected_s}s"

    def _look_up_mark(self, st: RunStatus, binlogs: list[Path]) -> None:
        """GTID and source time of the transaction at the mark and of the next one, from the binlogs."""
        if st.low_water_mark is None or not binlogs:
            return
        file, _, pos = st.low_water_mark.rpartition(":")
        path = next((p for p in binlogs if p.name == file), None)
        if path is None:
            return
        previous = None
        for trx in BinlogReader([path]).transactions():
            if previous is not None and previous.end_pos == int(pos):
                st.next_transaction = _described(trx)
                break
            if trx.end_pos == int(pos):
                st.mark_transaction = _described(trx)
            elif trx.end_pos > int(pos):
                break
            previous = trx


def recorded_binlogs(st: RunStatus) -> list[Path]:
    """The binlog files the latest run read, where it recorded them, if they are all still there."""
    paths = [Path(p) for p in st.arguments.get("binlog_paths") or ()]
    return paths if paths and all(p.is_file() for p in paths) else []


def _described(trx) -> SourceTransaction:
    when = shown_time(trx.timestamp)
    return SourceTransaction(str(trx.end), str(trx.gtid) if trx.gtid is not None else None, when)


def resume_command(st: RunStatus, cfg: ServerConfig, binlogs: list[Path]) -> str:
    """The replay command that resumes the run: its recorded arguments, this target's connection
    flags (never the password) and the binlog files (the paths given to status, else their names)."""
    given = {p.name: str(p) for p in binlogs}
    words = ["binreplay", "replay", *(given.get(name, name) for name in st.binlog_files)]
    if cfg.socket or not cfg.host:
        words += ["-S", cfg.socket] if cfg.socket else []
    else:
        words += ["-h", cfg.host] + (["-P", str(cfg.port)] if cfg.port != 3306 else [])
    words += ["-u", cfg.user] if cfg.user else []
    words += ["--defaults-file", cfg.defaults_file] if cfg.defaults_file else []
    words += ["--ssl-mode", cfg.ssl_mode] if cfg.ssl_mode else []
    for name in _REPLAY_FLAGS:
        value = st.arguments.get(name)
        if name == "from_backup":   # its coordinates identify the run; the path is beside them (older runs: only it)
            value = st.arguments.get("from_backup_path") or (value if isinstance(value, str) else None)
        if value is not None and value != "":
            words += [f"--{name.replace('_', '-')}", str(value)]
    for name, flag in _REPEATED_FLAGS.items():
        for value in st.arguments.get(name) or ():
            words += [flag, str(value)]
    words += ["--preserve-gtids"] if st.arguments.get("preserve_gtids") else []
    if st.arguments.get("apply_mode") not in (None, "binlog"):
        words += ["--apply", str(st.arguments["apply_mode"])]
    words += ["--allow-triggers"] if st.arguments.get("allow_triggers") else []
    words += ["--progress-schema", st.schema] if st.schema != "binreplay" else []
    return shlex.join(words)


def _shown_arguments(arguments: dict) -> dict:
    """The recorded arguments as a DBA reads them: the backup by its path and the coordinates that
    identify it (not the identity's dict), without the file lists shown on their own line."""
    shown = {k: v for k, v in arguments.items()
             if v not in (None, "", False) and k not in ("binlog_files", "binlog_paths", "from_backup_path")}
    backup = arguments.get("from_backup")
    if isinstance(backup, dict):
        coordinates = ", ".join(str(v) for v in backup.values())
        shown["from_backup"] = f"{arguments.get('from_backup_path') or 'a backup'} ({coordinates})"
    return shown


def human_status(st: RunStatus) -> str:
    if st.state == "none":
        return f"binreplay status: {st.message} (no progress tables in schema {st.schema})"
    lines = [f"binreplay status: {st.message}",
             f"run {st.run_id}: recorded as {st.recorded_state}, started {st.started_at}, last update {st.updated_at}"
             f"{f', finished {st.finished_at}' if st.finished_at else ''} (host {st.host}, pid {st.pid})"]
    files = st.binlog_files
    lines.append(f"binlogs: {len(files)} file(s){f' {files[0]} .. {files[-1]}' if files else ''}; arguments: "
                 + ", ".join(f"{k}={v}" for k, v in sorted(_shown_arguments(st.arguments).items())))
    if st.low_water_mark:
        lines.append(f"applied up to: {st.low_water_mark} ({st.transactions_to_mark} transactions read up to it)")
    else:
        lines.append("applied up to: nothing recorded yet (the run starts at its start point)")
    if st.low_water_mark and st.mark_transaction is None:
        lines.append("  (give the binlog files as arguments to see the GTID and source time at the mark)")
    for label, trx in (("last applied (at the mark)", st.mark_transaction), ("next to apply", st.next_transaction)):
        if trx is not None:
            lines.append(f"  {label}: {trx.position}{f' GTID {trx.gtid}' if trx.gtid else ''}, "
                         f"source time {trx.source_time}")
    if st.applied_above_mark:
        la = st.last_applied or {}
        lines.append(f"applied above the mark: {st.applied_above_mark} transactions (furthest {la.get('position')}"
                     f"{' GTID ' + la['gtid'] if la.get('gtid') else ''}, at {la.get('applied_at')})")
    for ddl in st.pending_ddl:
        lines.append(f"DDL started but not recorded as done at {ddl['position']} ({ddl['started_at']}): "
                     f"{ddl['statement']}")
    if st.last_error:
        lines.append(f"last error: {st.last_error}")
    if st.active_connection is not None:
        lines.append(f"active: yes, connection {st.active_connection}"
                     f"{f' ({st.active_client})' if st.active_client else ''}")
    if st.resume_command:
        lines.append(f"to resume (add your password option if one is needed):\n  {st.resume_command}")
    return "\n".join(lines)


def json_status(st: RunStatus) -> dict:
    return {**asdict(st), "message": st.message}
