"""`replay --check-target`: what a replay would meet on the target, found without writing to it
(not even the progress schema), like gh-ost's --noop.

The binlogs are validated as a replay validates them (bad input is exit 3 as always). Then, on one
target connection: whether it is the server that wrote the binlogs, every privilege the replay
needs (all of them, not the first missing one), whether the progress records fit this replay's
start and stop point, and the tables the selection writes (they exist with the binlog's columns).
Privileges are probed with statements that change nothing: zero-row DML on existing tables in a
transaction that is rolled back (kept out of the target's binlog when the user may), and
statements on tables that do not exist (the server checks the privilege first). Each problem is
one line; the exit code is the first problem's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from binreplay.apply.packets import binlog_statement
from binreplay.binlog.file import BinlogFile
from binreplay.errors import (
    BinreplayError,
    Fault,
    PrivilegeError,
    SchemaMismatchError,
    StateConflictError,
    TargetError,
    classify,
    describe,
    first_line,
)
from binreplay.model import BinlogPosition, TableMapInfo, TrxKind
from binreplay.report.progress import Reporter
from binreplay.report.summary import RunStart, Summary
from binreplay.run.options import ReplayOptions
from binreplay.run.preflight import past_stop_error, validate_input
from binreplay.run.start_line import check_not_same_server, run_start
from binreplay.run.table_check import TargetTables
from binreplay.server.connection import ServerInfo, connect, server_info
from binreplay.server.sql import quote_ident
from binreplay.server.tables import SchemaCache
from binreplay.source.reader import BinlogReader
from binreplay.source.selection import Bounds, Selector, Verdict, resolve_bounds, selected
from binreplay.source.validated import ValidatedRead
from binreplay.state.readback import ProgressReadback
from binreplay.state.store import ProgressStore

log = logging.getLogger(__name__)


@dataclass
class TargetCheck:
    """What the check found."""

    run: RunStart | None = None
    transactions: int = 0                      # the selection's transactions to apply
    problems: list[BinreplayError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_target(opts: ReplayOptions, reporter: Reporter) -> TargetCheck:
    """Check everything, report one line per problem, raise the first problem's error (its exit code)."""
    files = list(opts.binlogs)
    bounds = resolve_bounds(files, opts.selection())
    found, validated = validate_input(bounds, files, reporter, Summary(), compressed_ok=opts.apply_mode == "sql")
    cfg = opts.target.resolved()
    try:
        conn = connect(cfg)
    except TargetError as exc:   # unreachable, wrong password: exit 4 like a replay (nothing to resume)
        raise type(exc)(str(exc), resumable=False) from None
    result = TargetCheck(transactions=found.selected)
    try:
        server = server_info(conn)
        try:
            warning = check_not_same_server(server, files[bounds.start_file_index], allow=opts.allow_same_server)
            if warning:
                result.notes.append(warning)
        except BinreplayError as exc:
            result.problems.append(exc)
        written = _schema(conn, opts, bounds, files, validated, result)
        result.problems += _privileges(conn, server, opts, files[bounds.start_file_index], written)
        resumed_at, resumed_run = _progress(conn, opts, bounds, files, found.stopped_at, result)
        result.run = run_start(cfg, server, opts, bounds, files, resumed_at, resumed_run, found.stopped_at)
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    _report(result, reporter)
    if result.problems:
        first = result.problems[0]
        raise type(first)(f"the target check found {len(result.problems)} problem(s), listed above; nothing was "
                          "written to the target", resumable=False)
    return result


def _report(result: TargetCheck, reporter: Reporter) -> None:
    lines = [f"binreplay: check: {note}" for note in result.notes]
    lines += [f"binreplay: problem (exit {int(p.exit_code)}): {p}" for p in result.problems]
    if not result.problems and result.run is not None:
        lines.append(f"{result.run.line()}; {result.transactions} transactions to apply")
        lines.append("binreplay: target check passed; nothing was written to the target")
    record = {"type": "check", "ok": not result.problems, "transactions": result.transactions,
              "notes": result.notes,
              "problems": [{"exit_code": int(p.exit_code), "name": p.exit_code.name, "message": str(p)}
                           for p in result.problems],
              "start": dataclasses.asdict(result.run) if result.run is not None else None}
    reporter.result(lines, record)


def _schema(conn: pymysql.connections.Connection, opts: ReplayOptions, bounds: Bounds, files: list[Path],
            validated: ValidatedRead, result: TargetCheck) -> set[tuple[str, str]]:
    """Check the tables the selection's row events write, up to its first statement (DDL may change
    them: the replay checks the rest when it gets there); return every table written."""
    reader = BinlogReader(files, start_file_index=bounds.start_file_index, start_pos=bounds.start_position,
                          validated=validated)
    tables = TargetTables(SchemaCache(conn))
    written: set[tuple[str, str]] = set()
    reported: set[tuple[str, str]] = set()
    statement_at: BinlogPosition | None = None
    for trx, verdict in selected(reader.transactions(), Selector(bounds)):
        if verdict is not Verdict.APPLY or trx.kind is TrxKind.EMPTY:
            continue
        trx = opts.filters.apply(trx)
        names = {(info.schema, info.table) for info in trx.infos.values() if isinstance(info, TableMapInfo)}
        written |= names
        if trx.kind is not TrxKind.ROWS:
            statement_at = statement_at or trx.start
        if statement_at is not None or names <= reported:
            continue
        try:
            tables.check(trx)
        except SchemaMismatchError as exc:
            reported |= names
            result.problems.append(exc)
    if statement_at is not None:
        result.notes.append(f"tables are checked up to the first statement of the selection ({statement_at}); the "
                            "replay checks those written after it when it gets there")
    return written


def _privileges(conn: pymysql.connections.Connection, server: ServerInfo, opts: ReplayOptions, first_file: Path,
                written: Iterable[tuple[str, str]]) -> list[BinreplayError]:
    """Every privilege the replay needs that the user lacks, each as a PrivilegeError."""
    missing: list[BinreplayError] = []

    def probe(sql: str | bytes, what: str) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute(sql)  # type: ignore[arg-type]  # pymysql sends bytes as they are
                while cur.nextset():
                    pass
        except pymysql.err.MySQLError as exc:
            if classify(exc) is Fault.LOST:
                raise TargetError(f"lost the connection to the target during its check: {describe(exc)}") from None
            if classify(exc) is Fault.PRIVILEGE:
                missing.append(PrivilegeError(f"the target user lacks {what}: {first_line(exc)}"))
            # Any other error (a table that does not exist, ...) comes after the privilege check passed.

    replay_privilege = server.binlog_replay_privilege
    if opts.apply_mode == "binlog":
        fde = next(BinlogFile(first_file).events())
        probe(binlog_statement([fde.raw]), f"{replay_privilege}, needed to apply row events (BINLOG statements)")
        probe("SET @@session.pseudo_thread_id=@@session.pseudo_thread_id",
              f"{replay_privilege}, needed to set the session context of replayed statements")
    unlogged = False
    if server.log_bin:
        before = len(missing)
        if opts.target_binlog == "off" or opts.preserve_gtids:
            probe("SET SESSION sql_log_bin=0", "BINLOG ADMIN (or SUPER), to keep replayed transactions out of the "
                                              "target's binlog (--target-binlog off)")
        else:
            with contextlib.suppress(pymysql.err.MySQLError), conn.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin=0")   # only so the probes below log nothing
        unlogged = len(missing) == before and _sql_log_bin_off(conn)
    s = quote_ident(opts.progress_schema)
    store_what = f"on {s}.* (for the progress tables)"
    probe(f"CREATE TABLE {s}.`binreplay_check` LIKE {s}.`binreplay_check_missing`", f"CREATE {store_what}")
    progress = f"{s}.`runs`"
    dml = [(f"SELECT 1 FROM {progress} LIMIT 0", f"SELECT {store_what}"),
           (f"INSERT INTO {progress} SELECT * FROM {progress} WHERE 1=0", f"INSERT {store_what}"),
           (f"UPDATE {progress} SET run_id=run_id WHERE 1=0", f"UPDATE {store_what}"),
           (f"DELETE FROM {progress} WHERE 1=0", f"DELETE {store_what}")]
    if not server.log_bin or unlogged or _row_format(conn):
        # Zero-row statements in a transaction rolled back: nothing changes, nothing is logged.
        for schema, table in sorted(written):
            t = f"{quote_ident(schema)}.{quote_ident(table)}"
            column = _first_column(conn, schema, table)
            if column is None:
                continue   # not on the target: the schema check says so, or the selection creates it
            c = quote_ident(column)
            dml += [(f"INSERT INTO {t} SELECT * FROM {t} WHERE 1=0", f"INSERT on {t} (the binlog writes it)"),
                    (f"UPDATE {t} SET {c}={c} WHERE 1=0", f"UPDATE on {t} (the binlog writes it)"),
                    (f"DELETE FROM {t} WHERE 1=0", f"DELETE on {t} (the binlog writes it)")]
    with conn.cursor() as cur:
        cur.execute("BEGIN")
    try:
        for sql, what in dml:
            probe(sql, what)
    finally:
        with contextlib.suppress(pymysql.err.MySQLError), conn.cursor() as cur:
            cur.execute("ROLLBACK")
    return missing


def _sql_log_bin_off(conn: pymysql.connections.Connection) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT @@session.sql_log_bin")
        row = cur.fetchone()
    return row is not None and int(row[0]) == 0


def _row_format(conn: pymysql.connections.Connection) -> bool:
    """A ROW-format binlog logs nothing for a statement that changes no row."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@session.binlog_format")
        row = cur.fetchone()
    return row is not None and str(row[0]).upper() == "ROW"


def _first_column(conn: pymysql.connections.Connection, schema: str, table: str) -> str | None:
    info = SchemaCache(conn).table(schema, table)
    return info.columns[0].name if info is not None and info.columns else None


def _progress(conn: pymysql.connections.Connection, opts: ReplayOptions, bounds: Bounds, files: list[Path],
              stopped_at: BinlogPosition | None, result: TargetCheck) -> tuple[BinlogPosition | None, int | None]:
    """Whether the progress records fit this replay, decided as the replay decides it (the store's
    `decide_run`, `past_stop_error`) but without writing; (where it would resume, which run) when they do."""
    store = ProgressStore(conn, opts.progress_schema)
    holder = store.lock_holder()
    if holder is not None:
        result.problems.append(StateConflictError(f"another binreplay is replaying into this target now "
                                                  f"(connection {holder} holds its lock)"))
    if ProgressReadback(conn, opts.progress_schema).last_run() is None:
        return None, None
    names = [f.name for f in files]
    try:
        decision = store.decide_run(opts.fingerprint(), names, restart=opts.restart,
                                    start=(names[bounds.start_file_index], bounds.start_position or 0),
                                    target_restored=opts.target_restored)
    except StateConflictError as exc:
        result.problems.append(exc)
        return None, None
    if decision.replaced:
        result.notes.append(f"the replay would begin a new run: {decision.replaced}")
    if decision.resume is None:
        return None, None
    resume = store.resume_state(decision.resume, resumed=True)
    error = past_stop_error(resume, stopped_at, None, names)
    if error is not None:
        result.problems.append(error)
    return resume.low_water, decision.resume
