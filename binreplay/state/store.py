"""Checkpointing: progress records that live in the target, written with the data they describe.

Tables (in a dedicated schema, `binreplay` unless --progress-schema says otherwise):

runs        one row per replay run: its fingerprint (what it was asked to replay), the
            binlog file list that gives file_index its meaning, and its state.
applied     one row per applied source transaction, INSERTed inside the very target
            transaction that applies it. Its primary key makes a double apply fail loudly.
            `temporary_open`: where a span began whose temporary tables stay open after the commit
            (a span that could not be one commit, schedule/batches.py); a rerun from there refuses.
checkpoint  the low-water mark: every transaction at or before it is applied. New rows are
            inserted (never updated in place) and older rows and the applied rows below the
            mark are pruned in the same transaction. Its `temporary_open` is that of the last
            record at or before it.
ddl_journal intent and completion of statements that commit implicitly (DDL, CREATE TABLE ...
            SELECT), which cannot carry their progress row atomically: the digest of what
            any DDL changes taken before it, and the session that ran it; resume waits for
            that session to finish and compares the digest to decide.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable

import pymysql

from binreplay.binlog.names import binlog_sort_key
from binreplay.devtools.faults import crash_point
from binreplay.errors import StateConflictError
from binreplay.model import BinlogPosition, Transaction
from binreplay.schedule.batches import Batch
from binreplay.server.catalog import column_exists, definitions_digest, unreadable_parts
from binreplay.server.catalog import tables as catalog_tables
from binreplay.server.connection import check_privilege
from binreplay.server.sql import quote_ident, quote_string
from binreplay.state.records import AppliedRanges, DdlIntent, ResumeState, RunDecision, RunProgress
from binreplay.state.schema import PROGRESS_TABLES, schema_ddl


class ProgressStore:
    """The control connection's view of the progress tables (one per replay process)."""

    def __init__(self, conn: pymysql.connections.Connection, schema: str = "binreplay") -> None:
        self.conn = conn
        self.schema = schema
        self.q = quote_ident(schema)
        self.run_id: int | None = None
        self.lock_name = f"binreplay:{schema}"[:64]

    def on_connection(self, conn: pymysql.connections.Connection) -> ProgressStore:
        """The same store, used through another connection (each thread needs its own)."""
        other = ProgressStore(conn, self.schema)
        other.run_id = self.run_id
        return other

    def use_connection(self, conn: pymysql.connections.Connection) -> None:
        """Go on through another connection (the old one was lost): the same run, the same lock name."""
        self.conn = conn

    # -- setup ---------------------------------------------------------------

    def _exec(self, sql: str, args: tuple | None = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def exists(self) -> bool:
        """Whether the progress schema is there (before `ensure_schema` creates it)."""
        return bool(self._exec("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (self.schema,)))

    def ensure_schema(self) -> None:
        for ddl in schema_ddl(self.schema):
            check_privilege(self.conn, ddl, f"CREATE on {self.q}.* (for the progress tables)")
        check_privilege(self.conn, f"SELECT run_id FROM {self.q}.runs LIMIT 0",
                        f"SELECT, INSERT, UPDATE, DELETE on {self.q}.*")
        self._upgrade()
        self.prepare_session()

    def _upgrade(self) -> None:
        """Progress tables of an older binreplay record one transaction per `applied` row; today's
        rows record ranges and say how many transactions they hold."""
        if not column_exists(self.conn, self.schema, "applied", "transactions"):
            self._exec(f"ALTER TABLE {self.q}.applied ADD COLUMN transactions INT UNSIGNED NOT NULL DEFAULT 1 "
                       "AFTER start_pos")
        if not column_exists(self.conn, self.schema, "ddl_journal", "connection_id"):
            self._exec(f"ALTER TABLE {self.q}.ddl_journal ADD COLUMN connection_id BIGINT UNSIGNED NULL "
                       "AFTER statement")
        # Whether temporary tables of a span that could not be one commit stay open after a record.
        for table, after in (("applied", "gtid"), ("checkpoint", "transactions")):
            if not column_exists(self.conn, self.schema, table, "temporary_open"):
                self._exec(f"ALTER TABLE {self.q}.{table} ADD COLUMN temporary_open VARCHAR(600) NULL AFTER {after}")
        if not column_exists(self.conn, self.schema, "ddl_journal", "unreadable"):
            self._exec(f"ALTER TABLE {self.q}.ddl_journal ADD COLUMN unreadable VARCHAR(255) NULL "
                       "AFTER connection_id")

    def prepare_session(self) -> None:
        # Pruning must not take gap locks that would block the workers' inserts.
        self._exec("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")

    def lock_holder(self) -> int | None:
        """The connection id holding the run's lock, if any."""
        holder = self._exec("SELECT IS_USED_LOCK(%s)", (self.lock_name,))[0][0]
        return int(holder) if holder is not None else None

    def lock(self, wait_s: float = 0) -> None:
        """Only one binreplay may replay into a target at a time."""
        got = self._exec("SELECT GET_LOCK(%s, %s)", (self.lock_name, wait_s))[0][0]
        if got != 1:
            raise StateConflictError(f"another binreplay process is replaying into this target "
                                     f"(lock {self.lock_name!r} is held)")

    def drop(self) -> list[str]:
        """`binreplay forget`: drop the progress schema (the caller holds the lock). Only a schema of
        progress tables is dropped: one that holds anything else was not made by binreplay alone."""
        found = sorted(t.name for t in catalog_tables(self.conn, [self.schema]))
        others = [name for name in found if name not in PROGRESS_TABLES]
        if others:
            raise StateConflictError(f"schema {self.q} holds tables that are not binreplay's progress tables "
                                     f"({', '.join(others)}): not dropped; is --progress-schema right?")
        self._exec(f"DROP DATABASE {self.q}")
        return found

    # -- runs ----------------------------------------------------------------

    def decide_run(self, fingerprint: str, files: list[str], *, restart: bool, start: tuple[str, int] = ("", 0),
                   target_restored: bool = False) -> RunDecision:
        """What `begin_run` would do with the target's latest run, without writing anything (also what
        `--check-target` reports). `start` (binlog name, position; position 0 when a GTID state selects
        it) is where this replay starts: --restart, which undoes nothing, is refused on a target whose
        records go past it unless `target_restored` (the backup was restored again). A different replay
        that recorded no progress at all is replaced without --restart. Conflicts raise StateConflictError."""
        rows = self._exec(f"SELECT run_id, fingerprint, binlog_files, state, arguments FROM {self.q}.runs "
                          "WHERE state <> 'abandoned' ORDER BY run_id DESC LIMIT 1")
        if not rows:
            return RunDecision()
        run_id, old_fp, old_files_json, state, old_args = rows[0]
        old_files = json.loads(old_files_json)
        same = old_fp == fingerprint and files[:len(old_files)] == old_files
        progress = self._progress_of(int(run_id))
        what = f"run {run_id} ({state}: {_summarize(json.loads(old_args))})"
        if not restart and not same and progress is not None:
            raise StateConflictError(
                f"the target holds progress of a different replay, {what}, applied up to {progress}: rerun "
                "with that run's arguments to resume it (binreplay status prints them), or pass --restart to "
                "start over from this command's start point (it undoes nothing: restore the backup again "
                "first)")
        if restart and progress is not None and progress.past(start) and not target_restored:
            raise StateConflictError(
                f"--restart undoes nothing, and the target's records show {what} applied transactions up to "
                f"{progress}, past this replay's start {start[0]}:{start[1]}: replaying from there would apply "
                "them again; restore the backup again, then pass --restart --target-restored")
        if restart or not same:
            return RunDecision(abandon=int(run_id), replaced=(
                f"{what} abandoned; " + (f"it had applied transactions up to {progress}, which stay applied "
                                         "(nothing is undone)" if progress is not None else "it had applied nothing")))
        return RunDecision(resume=int(run_id))

    def begin_run(self, fingerprint: str, arguments: dict, files: list[str], *, restart: bool,
                  start: tuple[str, int] = ("", 0), target_restored: bool = False,
                  refuse: Callable[[ResumeState], Exception | None] | None = None) -> ResumeState:
        """Resume the target's run of this replay, or begin one (`decide_run` says which). `refuse`
        sees the run to resume before anything is written: an error it returns is raised with the
        run's record left as it was (a command refused changes nothing on the target)."""
        decision = self.decide_run(fingerprint, files, restart=restart, start=start, target_restored=target_restored)
        if decision.resume is not None and refuse is not None:
            error = refuse(self.resume_state(decision.resume, resumed=True))
            if error is not None:
                raise error
        if decision.abandon is not None:
            self._exec(f"UPDATE {self.q}.runs SET state='abandoned', updated_at=NOW(6) WHERE run_id=%s",
                       (decision.abandon,))
        if decision.resume is not None:
            self.run_id = decision.resume
            self._exec(f"UPDATE {self.q}.runs SET state='running', binlog_files=%s, host=%s, pid=%s, "
                       "updated_at=NOW(6), finished_at=NULL, last_error=NULL WHERE run_id=%s",
                       (json.dumps(files), socket.gethostname(), os.getpid(), self.run_id))
            return self.resume_state(self.run_id, resumed=True)
        self._exec(f"INSERT INTO {self.q}.runs (fingerprint, arguments, binlog_files, state, host, pid) "
                   "VALUES (%s, %s, %s, 'running', %s, %s)",
                   (fingerprint, json.dumps(arguments, sort_keys=True), json.dumps(files),
                    socket.gethostname(), os.getpid()))
        self.run_id = int(self._exec("SELECT LAST_INSERT_ID()")[0][0])
        return ResumeState(self.run_id, resumed=False, low_water=None, replaced=decision.replaced)

    def forget_run(self) -> None:
        """Delete the record of the run this process began and that applied nothing (a run refused
        after it began, run/early.py): the target's records are as they were before it."""
        assert self.run_id is not None
        self._exec(f"DELETE FROM {self.q}.runs WHERE run_id=%s", (self.run_id,))
        self.run_id = None

    def record_arguments(self, arguments: dict) -> None:
        """The arguments of the latest process that went on with the run (an extended stop point, a
        --follow round, another apply mode): what `status` shows and its resume command repeats."""
        assert self.run_id is not None
        self._exec(f"UPDATE {self.q}.runs SET arguments=%s WHERE run_id=%s",
                   (json.dumps(arguments, sort_keys=True), self.run_id))

    def _progress_of(self, run_id: int) -> RunProgress | None:
        """The furthest position a run's records reach (None: it recorded nothing, so applied nothing).
        A DDL started but not recorded as done counts if the schema changed since (it took effect, as
        on resume); one the target rejected left the schema as it was."""
        rows = self._exec(f"SELECT binlog_file, pos FROM {self.q}.checkpoint WHERE run_id=%s UNION ALL "
                          f"SELECT binlog_file, end_pos FROM {self.q}.applied WHERE run_id=%s",
                          (run_id, run_id))
        started = self._exec(f"SELECT binlog_file, end_pos, schema_before FROM {self.q}.ddl_journal "
                             "WHERE run_id=%s AND state='started'", (run_id,))
        if started:
            schema_now = self.schema_fingerprint()
            rows += [(file, pos) for file, pos, before in started if before != schema_now]
        ends = [RunProgress(str(file), int(pos)) for file, pos in rows]
        return max(ends, key=lambda e: (binlog_sort_key(e.binlog_file), e.pos), default=None)

    def resume_state(self, run_id: int, resumed: bool) -> ResumeState:
        """What run `run_id` recorded: its mark and the ranges applied above it (reads only)."""
        mark = self._exec(f"SELECT file_index, binlog_file, pos, transactions FROM {self.q}.checkpoint "
                          "WHERE run_id=%s ORDER BY file_index DESC, pos DESC LIMIT 1", (run_id,))
        low = BinlogPosition(int(mark[0][0]), str(mark[0][1]), int(mark[0][2])) if mark else None
        before = int(mark[0][3]) if mark else 0
        columns = f"SELECT file_index, start_pos, end_pos, transactions FROM {self.q}.applied WHERE run_id=%s"
        if low is None:
            applied = self._exec(columns, (run_id,))
        else:
            applied = self._exec(columns + " AND (file_index > %s OR (file_index = %s AND end_pos > %s))",
                                 (run_id, low.file_index, low.file_index, low.pos))
        return ResumeState(run_id, resumed, low, AppliedRanges(applied), before)

    def temporary_open_at(self, run_id: int) -> tuple[int, str, str] | None:
        """Where a run's records end inside a span whose temporary tables an earlier commit opened and
        left open (a span that could not be one commit): (file index, where the records end, where the
        span began), from its furthest record (the mark, or an `applied` row above it); None if not."""
        rows = self._exec(f"SELECT file_index, pos, binlog_file, temporary_open FROM {self.q}.checkpoint "
                          f"WHERE run_id=%s UNION ALL SELECT file_index, end_pos, binlog_file, temporary_open "
                          f"FROM {self.q}.applied WHERE run_id=%s ORDER BY file_index DESC, pos DESC LIMIT 1",
                          (run_id, run_id))
        if not rows or rows[0][3] is None:
            return None
        file_index, pos, file, span = rows[0]
        return int(file_index), f"{file}:{pos}", str(span)

    def finish(self, state: str, error: str | None = None) -> None:
        if self.run_id is None:
            return
        self._exec(f"UPDATE {self.q}.runs SET state=%s, last_error=%s, updated_at=NOW(6), "
                   "finished_at=IF(%s='complete', NOW(6), NULL) WHERE run_id=%s",
                   (state, error, state, self.run_id))

    # -- per target commit ---------------------------------------------------

    def applied_insert(self, file_index: int, file: str, start_pos: int, end_pos: int, transactions: int,
                       last_gtid: object | None, temporary_open: object | None = None) -> bytes:
        """The INSERT a worker runs inside the target transaction that applies a range of source
        transactions (one batch: contiguous, in one file), so the record commits with the data.
        `temporary_open`: where a span began whose temporary tables stay open after this commit."""
        return self._applied_insert([(file_index, file, start_pos, end_pos, transactions, last_gtid)],
                                    temporary_open)

    def _applied_insert(self, rows: list[tuple[int, str, int, int, int, object | None]],
                        temporary_open: object | None = None) -> bytes:
        assert self.run_id is not None
        last = len(rows) - 1
        values = ",".join(
            f"({self.run_id},{file_index},{end_pos},{quote_string(file)},{start_pos},{transactions},"
            f"{quote_string(str(gtid)) if gtid is not None else 'NULL'},"
            f"{quote_string(str(temporary_open)) if temporary_open is not None and i == last else 'NULL'})"
            for i, (file_index, file, start_pos, end_pos, transactions, gtid) in enumerate(rows))
        return (f"INSERT INTO {self.q}.applied (run_id, file_index, end_pos, binlog_file, start_pos, transactions, "
                f"gtid, temporary_open) VALUES {values}").encode()

    def applied_insert_of(self, batch: Batch) -> bytes:
        """A batch's row: its range up to its last member, and how many transactions this commit applies
        (transactions riding along were applied by an earlier run or are outside the selection). A unit
        with temporary tables that spans binlog files has one row per file, and a batch cut by table
        one per run of consecutive members, in the same INSERT."""
        if not batch.earlier_files and batch.ranges is None:
            return self.applied_insert(batch.file_index, batch.file, batch.start_pos, batch.record_end,
                                       len(batch.members), batch.last.gtid, batch.temporary_open)
        return self._applied_insert([(r.file_index, r.file, r.start_pos, r.end_pos, r.transactions, r.last_gtid)
                                     for r in batch.records()], batch.temporary_open)

    def was_applied(self, file_index: int, end_pos: int) -> bool:
        """After a connection was lost during COMMIT: does the range ending here have its record?"""
        assert self.run_id is not None
        return bool(self._exec(f"SELECT 1 FROM {self.q}.applied WHERE run_id=%s AND file_index=%s AND end_pos=%s",
                               (self.run_id, file_index, end_pos)))

    def advance(self, mark: BinlogPosition, transactions: int) -> None:
        """Move the low-water mark forward and prune what it makes redundant, atomically."""
        assert self.run_id is not None
        with self.conn.cursor() as cur:
            cur.execute("BEGIN")
            # The new mark is inside a span whose temporary tables stay open if the last record at or
            # before it says so (the applied rows it prunes, or the mark before it).
            at_or_before = "(file_index < %s OR (file_index = %s AND {} <= %s))"
            cur.execute(f"SELECT temporary_open FROM (SELECT file_index, end_pos AS pos, temporary_open FROM "
                        f"{self.q}.applied WHERE run_id=%s AND {at_or_before.format('end_pos')} UNION ALL "
                        f"SELECT file_index, pos, temporary_open FROM {self.q}.checkpoint WHERE run_id=%s AND "
                        f"{at_or_before.format('pos')}) AS r ORDER BY file_index DESC, pos DESC LIMIT 1",
                        (self.run_id, mark.file_index, mark.file_index, mark.pos,
                         self.run_id, mark.file_index, mark.file_index, mark.pos))
            found = cur.fetchall()
            temporary_open = found[0][0] if found else None
            cur.execute(f"INSERT IGNORE INTO {self.q}.checkpoint (run_id, file_index, pos, binlog_file, transactions, "
                        "temporary_open) VALUES (%s, %s, %s, %s, %s, %s)",
                        (self.run_id, mark.file_index, mark.pos, mark.file, transactions, temporary_open))
            cur.execute(f"DELETE FROM {self.q}.checkpoint WHERE run_id=%s AND "
                        "(file_index < %s OR (file_index = %s AND pos < %s))",
                        (self.run_id, mark.file_index, mark.file_index, mark.pos))
            cur.execute(f"DELETE FROM {self.q}.applied WHERE run_id=%s AND "
                        "(file_index < %s OR (file_index = %s AND end_pos <= %s))",
                        (self.run_id, mark.file_index, mark.file_index, mark.pos))
            cur.execute(f"DELETE FROM {self.q}.ddl_journal WHERE run_id=%s AND "
                        "(file_index < %s OR (file_index = %s AND end_pos <= %s))",
                        (self.run_id, mark.file_index, mark.file_index, mark.pos))
            cur.execute(f"UPDATE {self.q}.runs SET updated_at=NOW(6) WHERE run_id=%s", (self.run_id,))
            crash_point("checkpoint")
            cur.execute("COMMIT")

    # -- non-transactional statements ------------------------------------------

    def schema_fingerprint(self) -> str:
        """40 hex digits that change when any DDL takes effect (catalog.definitions_digest: definitions,
        table identities, accounts and privileges), to tell whether one did."""
        return self.schema_state()[0]

    def schema_state(self) -> tuple[str, str]:
        """`schema_fingerprint()`, and the privileges missing for the parts of it this session could
        not read (comma-joined, '' when none: catalog.unreadable_parts)."""
        digest = definitions_digest(self.conn, exclude=(self.schema,))
        return hashlib.sha1(repr(digest).encode()).hexdigest(), ", ".join(unreadable_parts(digest))

    def ddl_started(self, trx: Transaction, statement: bytes, schema_before: str, unreadable: str = "") -> None:
        """Before a statement that commits implicitly runs on this store's connection."""
        self._exec(f"REPLACE INTO {self.q}.ddl_journal (run_id, file_index, end_pos, binlog_file, state, "
                   "schema_before, statement, connection_id, unreadable) VALUES (%s, %s, %s, %s, 'started', %s, "
                   "%s, CONNECTION_ID(), %s)",
                   (self.run_id, trx.file_index, trx.end_pos, trx.file, schema_before, statement, unreadable))

    def ddl_done_statements(self, batch: Batch) -> list[bytes]:
        """What records the journaled transaction of `batch` done: its `applied` row and its journal
        entry, to run in one target transaction (with the rows after the statement, for CREATE TABLE
        ... SELECT)."""
        return [self.applied_insert_of(batch),
                (f"UPDATE {self.q}.ddl_journal SET state='done' WHERE run_id={int(self.run_id or 0)} "
                 f"AND file_index={batch.file_index} AND end_pos={batch.last.end_pos}").encode()]

    def ddl_done(self, batch: Batch) -> None:
        with self.conn.cursor() as cur:
            cur.execute("BEGIN")
            for sql in self.ddl_done_statements(batch):
                cur.execute(sql)  # type: ignore[call-overload]  # pymysql takes bytes as they are
            cur.execute("COMMIT")

    def ddl_intent(self, trx: Transaction) -> DdlIntent | None:
        """A DDL of this transaction that was started by an earlier process and not recorded as done."""
        rows = self._exec(f"SELECT schema_before, connection_id, statement, unreadable FROM {self.q}.ddl_journal "
                          "WHERE run_id=%s AND file_index=%s AND end_pos=%s AND state='started'",
                          (self.run_id, trx.file_index, trx.end_pos))
        if not rows:
            return None
        before, connection_id, statement, unreadable = rows[0]
        return DdlIntent(trx.file_index, trx.end_pos, before, int(connection_id) if connection_id is not None else None,
                         bytes(statement or b""), unreadable)


def _summarize(args: dict) -> str:
    files = args.get("binlog_files") or []
    parts = [f"{len(files)} file(s) from {files[0]}" if files else "no files"]
    for key in ("start_position", "start_datetime", "start_gtid", "exclude_gtids", "include_gtids",
                "from_backup_path" if args.get("from_backup_path") else "from_backup"):
        if args.get(key):
            parts.append(f"{key}={args[key]}")
    return ", ".join(parts)
