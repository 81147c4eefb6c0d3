"""Applying: one target session that applies transactions exactly, with their progress rows.

Row transactions run as BEGIN ... <their changes> ... INSERT progress; COMMIT, so the data
and the record of it commit together. Several consecutive source transactions may share
one target commit (a group): their progress rows are in that same commit.
A standalone statement (DDL) cannot carry its progress row; it is journaled around instead
(the `ddl_journal` of state/store.py). Each worker of the pool owns one Applier and one connection.
A corrupt event (the server says so, errors.Fault.CORRUPT; or --apply sql cannot decode it) is bad
input naming its source transaction: a group that carried one is rolled back and applied again one
member at a time, so the members before it are applied and recorded and nothing of it is.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import pymysql

from binreplay.apply.batch_parts import one_at_a_time, split_at_implicit_commit
from binreplay.apply.encoders import Encoder
from binreplay.apply.packets import SessionState, Step, pack
from binreplay.apply.row_checks import RowCheck
from binreplay.devtools.faults import crash_point, disconnect_point
from binreplay.errors import (
    BadInputError,
    Fault,
    Interrupted,
    TargetError,
    UnsupportedError,
    classify,
    describe,
    error_code,
    rejected_error,
)
from binreplay.model import BinlogPosition, MariadbGtid, MysqlGtid, Transaction, TrxKind
from binreplay.schedule.batches import Batch
from binreplay.server.catalog import session_running
from binreplay.server.connection import ServerConfig, connect
from binreplay.server.reconnect import Reconnector
from binreplay.server.sql import quote_ident, quote_string
from binreplay.state.records import DdlIntent
from binreplay.state.store import ProgressStore

log = logging.getLogger(__name__)

# The warning of a ROLLBACK whose transaction changed tables that cannot roll back (MyISAM, Aria ...).
ER_WARNING_NOT_COMPLETE_ROLLBACK = 1196
# How long a rerun waits for the session of an earlier attempt to finish its statement before giving up
# (a rerun waits again).
DDL_WAIT_LIMIT_S = 6 * 3600.0
# How long a COMMIT whose connection was lost may still run in its session before its outcome is read.
COMMIT_WAIT_LIMIT_S = 300.0

class _Retry(Exception):
    """A group failed in a way that is safe to retry (deadlock, lock wait, lost connection)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Corrupt(Exception):
    """The target's server found an event of the batch corrupt (errors.Fault.CORRUPT); rolled back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Mismatch(Exception):
    """A row statement matched another number of rows than the source changed (--apply sql)."""

    def __init__(self, check: RowCheck, found: int) -> None:
        super().__init__(check.position)
        self.check, self.found = check, found


class Applier:
    """One target session. `encoder` (built by `make_encoder` for this session) says what its
    transactions become in the apply mode of the run."""

    def __init__(self, cfg: ServerConfig, store: ProgressStore, make_encoder: Callable[[Applier], Encoder], *,
                 preserve_gtids: bool = False, name: str = "worker-0", max_retries: int = 10,
                 reconnector: Reconnector | None = None) -> None:
        self.cfg = cfg
        # Waits for a target that went away (shared by the run's sessions); without one, no wait.
        self.reconnector = reconnector or Reconnector(timeout_s=0)
        self.base_store = store
        self.store = store
        self.preserve_gtids = preserve_gtids
        self.name = name
        self.max_retries = max_retries
        self.retries = 0                      # retried batches (deadlocks, lock waits, lost connections)
        self.busy_s = 0.0                     # time spent applying, for the parallelism figure
        self.groups = 0                       # target commits done
        self.current = "idle"                 # what it is applying (shown with -v)
        self.state = SessionState()
        self.conn: pymysql.connections.Connection | None = None
        self.encoder = make_encoder(self)
        # Called before COMMIT with the batch; False = not our turn in time (--preserve-commit-order).
        self.commit_gate: Callable[[Batch], bool] | None = None
        self.session = 0                      # which target session this is (counted by `open`)
        # Spans whose temporary tables an earlier commit left open, and the session that holds them.
        self._temporary_sessions: dict[BinlogPosition, int] = {}
        # The session that applied statements of a span (it may hold temporary tables; 0: none), and the
        # source (re)starts before the batches it applied (Batch.source_starts).
        self._temporary_session = 0
        self._source_starts = 0
        # What the last ROLLBACK of the current attempt showed: an open transaction rolled back with
        # nothing kept (`_rolled_back_clean`), or the server's warning that some changes were kept.
        self._rolled_back_clean = False
        self._rollback_kept = False
        self.holding = False                  # batches applied in the open transaction, not committed (apply_held)

    # -- connection ------------------------------------------------------------

    def open(self) -> None:
        # --apply sql: UPDATE reports the rows it found, not only those it changed (row_checks.py).
        self.conn = connect(self.cfg, found_rows=self.encoder.found_rows)
        self.session += 1
        # Row changes are applied by primary key; READ COMMITTED takes no gap locks, so
        # workers applying disjoint rows do not block each other on neighbouring gaps.
        self._send(b"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self.store = self.base_store.on_connection(self.conn)
        self.state.forget()

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):   # closing a broken connection
                self.conn.close()
            self.conn = None

    def _send(self, sql: bytes, checks: tuple[tuple[int, RowCheck], ...] = ()) -> None:
        """Run one packet; with `checks`, compare those statements' row counts (the first mismatch
        is raised as _Mismatch, also when a later statement of the packet failed because of it)."""
        assert self.conn is not None
        expected = dict(checks)
        mismatch: _Mismatch | None = None
        index = 0
        with self.conn.cursor() as cur:
            try:
                cur.execute(sql)  # type: ignore[call-overload]  # pymysql takes bytes as they are
                while True:
                    check = expected.get(index)
                    if check is not None and cur.rowcount != check.expected and mismatch is None:
                        mismatch = _Mismatch(check, cur.rowcount)
                    index += 1
                    if not cur.nextset():
                        break
            except pymysql.err.MySQLError:
                if mismatch is None:
                    raise
        if mismatch is not None:
            raise mismatch

    # -- applying ----------------------------------------------------------------

    def apply_batch(self, batch: Batch) -> None:
        """Apply a batch of consecutive source transactions in one target commit, with the record
        of it (DDL: alone, journaled)."""
        self.current = f"{len(batch.members)} trx from {batch.start}"
        try:
            self._apply(batch)
            self.groups += 1
        finally:
            self.current = "idle"

    def _apply(self, batch: Batch) -> None:
        trxs = batch.members
        for attempt in range(self.max_retries + 1):
            if self.conn is None:
                self.reconnector.call(self.open)
            self._check_temporary_session(batch)
            self._rolled_back_clean = self._rollback_kept = False
            try:
                if batch.unit:
                    # A span with temporary tables: one commit, whatever its members (schedule/temporary.py).
                    self._apply_transactional(batch)
                elif len(trxs) == 1 and trxs[0].non_transactional:
                    # The source rolled it back: whatever it holds, never cut at an implicit commit.
                    self._apply_rolled_back(batch)
                elif len(trxs) == 1 and trxs[0].journaled:
                    self._apply_standalone(batch)
                else:
                    self._apply_transactional(batch)
                if batch.temporary_from is not None:
                    self._temporary_sessions[batch.temporary_from] = self.session
                return
            except (_Corrupt, BadInputError) as exc:
                # The target's server found an event corrupt, or (--apply sql) decoding one failed.
                self.state.forget()
                if batch.unit and len(trxs) > 1:
                    # Its members cannot be committed one at a time (the temporary tables would not survive
                    # a rerun from between them): it stops here, all of it rolled back.
                    why = exc.reason if isinstance(exc, _Corrupt) else str(exc)
                    raise BadInputError(f"one of the {len(trxs)} transactions from {batch.start} (a span with "
                                        "temporary tables, applied as one commit) carries an event the target's "
                                        f"server found corrupt or that cannot be decoded: {why}; nothing of the span "
                                        "was applied, everything before it was") from None
                if len(trxs) == 1:
                    if isinstance(exc, BadInputError):
                        raise
                    trx = trxs[0]
                    raise BadInputError(f"the transaction at {trx.start} ({trx.gtid or 'no GTID'}) carries an event "
                                        f"the target's server found corrupt (corrupt binlog?): {exc.reason}; "
                                        "nothing of it was applied, everything before it was") from None
                # Which member carried it? Apply them one at a time: those before it are applied and
                # recorded (a rerun resumes there), nothing of it remains.
                log.info("%s: a corrupt event in the %d transactions from %s; applying them one at a time",
                         self.name, len(trxs), batch.start)
                for sub in one_at_a_time(batch):
                    self._apply(sub)
                return
            except (_Retry, pymysql.err.MySQLError) as exc:
                if isinstance(exc, pymysql.err.MySQLError):
                    # Lost while binreplay's own bookkeeping ran (the DDL journal, a progress row outside
                    # a transaction): a retry reads the journal again, so it repeats nothing done.
                    if classify(exc) is not Fault.LOST:
                        raise
                    self.close()
                reason = exc.reason if isinstance(exc, _Retry) else f"lost the connection ({describe(exc)})"
                self._refuse_partial_retry(batch, reason)
                if batch.unit:
                    # ROLLBACK does not drop the temporary tables the attempt created: start a fresh session.
                    self.close()
                self.retries += 1  # read by the reporter (an int: no lock needed)
                # Settings built for steps that never ran would otherwise be thought sent.
                self.state.forget()
                if attempt == self.max_retries:
                    raise TargetError(f"gave up on the transaction at {trxs[0].start} after {attempt + 1} attempts "
                                      f"({reason})") from None
                delay = min(0.05 * 2 ** attempt, 2.0)
                log.info("%s: %s at %s; retrying in %.2fs", self.name, reason, trxs[0].start, delay)
                time.sleep(delay)

    def _refuse_partial_retry(self, batch: Batch, reason: str) -> None:
        """A failed attempt that may have left changes a rollback cannot undo is not retried: that
        would apply them twice. Retried only when a ROLLBACK of the open transaction undid it all."""
        kept = sorted({k for trx in batch.members if (k := trx.kept_on_rollback)})
        if not self._rollback_kept and (not kept or self._rolled_back_clean):
            return
        trx = next((t for t in batch.members if t.kept_on_rollback), batch.members[0])
        what = ", ".join(kept) if kept else "a table that cannot roll back (the target said so)"
        where = f"{trx.start} (GTID {trx.gtid})" if trx.gtid is not None else f"{trx.start} (no GTID)"
        raise TargetError(f"the transaction at {where} writes {what} and failed ({reason}) after part of it may "
                          "have been applied; binreplay does not retry it, which could apply that part twice: "
                          "check those tables, then rerun (it applies the transaction again)")

    def _check_temporary_session(self, batch: Batch) -> None:
        """A transaction that needs temporary tables an earlier commit opened (a span that could not be
        one commit) cannot continue in another session: the tables went with the lost one. And a batch
        the source wrote after it (re)started: its temporary tables went with the restart (no DROP is
        logged), so this session's go too (a new session), before a CREATE of the same name meets them."""
        if batch.source_starts > self._source_starts:
            self._source_starts = batch.source_starts
            if self._temporary_session == self.session:
                self.close()
                self.reconnector.call(self.open)
        span = batch.temporary_from
        if batch.unit or span is not None:
            self._temporary_session = self.session
        if span is None or self._temporary_sessions.get(span, self.session) == self.session:
            return
        raise TargetError(f"lost the target session holding the temporary tables opened at {span}, which the "
                          f"transaction at {batch.start} needs: that span could not be applied as one commit (see "
                          "the warning about it), so no other session can continue it; restore the backup and "
                          "replay again")

    def _gtid_sets(self, trx: Transaction) -> list[bytes]:
        g = trx.gtid
        if not self.preserve_gtids or g is None:
            return []
        if isinstance(g, MariadbGtid):
            return [f"SET @@session.gtid_domain_id={g.domain_id}, @@session.server_id={g.server_id}, "
                    f"@@session.gtid_seq_no={g.seq_no}".encode()]
        if isinstance(g, MysqlGtid) and not g.anonymous:
            return [f"SET @@SESSION.GTID_NEXT={quote_string(str(g))}".encode()]
        return []

    def _gtid_reset(self, trx: Transaction) -> list[bytes]:
        if self.preserve_gtids and isinstance(trx.gtid, MysqlGtid) and not trx.gtid.anonymous:
            return [b"SET @@SESSION.GTID_NEXT='AUTOMATIC'"]
        return []

    def _apply_transactional(self, batch: Batch) -> None:
        # A batch shares one commit, so it can only carry one source GTID: batches are of one
        # transaction with --preserve-gtids.
        trxs = batch.members
        enc = self.encoder
        prefix = self._gtid_sets(trxs[0]) + [b"BEGIN"] + enc.check_reset()
        if batch.barrier and any(t.kind in (TrxKind.STATEMENT, TrxKind.MIXED, TrxKind.DDL) for t in trxs):
            # Statements run alone; keep the server's default isolation for them (a statement-format
            # binlog on the target refuses READ COMMITTED).
            prefix.insert(0, b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        suffix = enc.check_guard() + [self.store.applied_insert_of(batch), b"COMMIT"] + self._gtid_reset(trxs[0])
        # A unit goes member by member: the fault tests kill binreplay between them, while the
        # temporary tables are open in this session ("temporary-open").
        pieces = [p for trx in trxs for p in enc.pieces([trx])] if batch.unit else enc.pieces(trxs)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            if i and batch.unit:
                crash_point("temporary-open")
            try:
                parts = self._body(piece, batch.statement if len(pieces) == 1 else None)
            except Exception:
                if i and self.conn is not None:
                    self._rollback()   # earlier pieces ran in the open transaction
                raise
            self._run(batch, pack(parts, prefix=prefix if i == 0 else [], suffix=suffix if last else []),
                      commit=last)
        crash_point("after-commit")

    def apply_held(self, batch: Batch) -> None:
        """Apply a batch of row transactions, with its record, in the session's open transaction and
        leave it open: `commit_held` commits every batch held so far at once (run/early.py). Not
        retried: any failure rolls back every held batch (`holding` is then False)."""
        try:
            parts = self._body(batch.members, batch.statement)
            prefix = [] if self.holding else [b"BEGIN"]
            self.holding = True
            self._run(batch, pack(parts, prefix=prefix, suffix=[self.store.applied_insert_of(batch)]), commit=False)
        except BaseException:
            self.holding = False
            if self.conn is not None:
                self._rollback()
            raise

    def commit_held(self, last: Batch) -> bool:
        """Commit the held batches (`last`: the newest of them); False if they are not committed (the
        COMMIT failed, and the progress table says it did not commit)."""
        assert self.holding and self.conn is not None
        self.holding = False
        connection_id = self.conn.thread_id()
        crash_point("before-commit")
        try:
            self._send(b"COMMIT")
        except pymysql.err.MySQLError as exc:
            if classify(exc) is not Fault.LOST:
                self._rollback()
            else:
                self.close()
            if not self._was_committed(last, connection_id):
                return False
        self.groups += 1
        crash_point("after-commit")
        return True

    def rollback_held(self) -> None:
        if self.holding:
            self.holding = False
            self._rollback()

    @property
    def rollback_kept(self) -> bool:
        """The last ROLLBACK kept changes to non-transactional tables (the server warned so)."""
        return self._rollback_kept

    def _body(self, trxs: list[Transaction], prepared: bytes | None = None) -> list:
        """The statements of `trxs`. In SQL mode building them queries the target (table definitions,
        collations): a connection lost meanwhile is retried like one lost while applying."""
        try:
            return self.encoder.body(trxs, prepared)
        except pymysql.err.MySQLError as exc:
            if classify(exc) is Fault.LOST:
                self.close()
                raise _Retry(f"lost the connection ({describe(exc)})") from None
            raise TargetError(f"the target failed while the transaction at {trxs[0].start} was prepared: "
                              f"{describe(exc)}") from None

    def _apply_rolled_back(self, batch: Batch) -> None:
        """The source rolled back but kept non-transactional changes: do the same, then record
        it on its own (exactly-once cannot hold for such tables; the run warns about them)."""
        trx = batch.members[0]
        enc = self.encoder
        parts = self._body([trx])
        self._run(batch, pack(parts, prefix=self._gtid_sets(trx) + [b"BEGIN"] + enc.check_reset(),
                              suffix=enc.check_guard() + [b"ROLLBACK"]), commit=False)
        self._run(batch, [Step(self.store.applied_insert_of(batch))], commit=False)

    def _apply_standalone(self, batch: Batch) -> None:
        """A transaction that commits implicitly (`Transaction.journaled`): its statement alone, between
        the journal's `started` entry and its record; for CREATE TABLE ... SELECT the rows after the
        CREATE then go in one target transaction with the record. Whatever interrupts it (a kill, a
        lost connection), the statement has run or not and the rows are there with their record or
        not at all; the journal tells a rerun which."""
        trx = batch.members[0]
        statement_part, rows_part = split_at_implicit_commit(trx)
        intent = self.store.ddl_intent(trx)
        ran = statement_part is None   # the filters dropped the statement: only its rows are left
        if intent is not None:
            # An earlier attempt started the statement and was interrupted before recording it.
            self._await_earlier_attempt(intent, trx)
            now, unreadable = self.store.schema_state()
            ran = now != intent.schema_before
            if intent.unreadable is not None and (unreadable or intent.unreadable) and (
                    not ran or unreadable != intent.unreadable):
                # A part of the digest the replay user could not read (then, or now) may be all the
                # statement changed: unchanged digests prove nothing, nor do digests of other parts.
                missing = intent.unreadable or unreadable
                raise UnsupportedError(f"cannot tell whether the statement at {trx.start} ran (the replay user "
                                       f"lacks {missing}): grant PROCESS/SELECT on mysql.* or check by hand")
            then = "running it" if not ran else "recording it" if rows_part is None else "applying the rows after it"
            log.warning("%s: the statement at %s had %staken effect before the interruption; %s", self.name,
                        trx.start, "" if ran else "not ", then)
        if statement_part is not None and not ran:
            parts = self._body([statement_part])
            statement = b"\n".join(p.sql for p in parts if p.kind == "statement")
            self.store.ddl_started(trx, statement, *self.store.schema_state())
            crash_point("ddl-started")
            steps = pack(parts, prefix=self._gtid_sets(trx), suffix=self._gtid_reset(trx))
            self._run(batch, steps, commit=False)
            crash_point("ddl-executed")
            if disconnect_point("ddl-executed"):
                self._lose_connection()
        if rows_part is None:
            self.store.ddl_done(batch)
            return
        # Built now: --apply sql reads the definition of the table the statement created.
        enc = self.encoder
        parts = self._body([rows_part])
        # An earlier attempt's CREATE made the table, so it holds only rows of this transaction: none
        # (rolled back), or, in a table that cannot roll back, those that attempt wrote. Start empty.
        emptied = [f"DELETE FROM {quote_ident(db)}.{quote_ident(table)}".encode()
                   for db, table in sorted(rows_part.tables)] if ran and statement_part is not None else []
        self._run(batch, pack(parts, prefix=[b"BEGIN", *enc.check_reset(), *emptied],
                              suffix=[*enc.check_guard(), *self.store.ddl_done_statements(batch), b"COMMIT"]),
                  commit=True)

    def _await_earlier_attempt(self, intent: DdlIntent, trx: Transaction) -> None:
        """The session that ran the statement may still be running it: the server finishes a statement
        before it notices that its client is gone (killed, or the connection lost). What it did is
        only known once it is done."""
        if intent.connection_id is None:
            return
        assert self.conn is not None
        started = time.monotonic()
        shown = 0.0
        # Only while that connection runs that statement: after a restart of the target its id may be
        # another session's (the statement ended with the server then).
        while session_running(self.conn, intent.connection_id, intent.statement):
            waited = time.monotonic() - started
            if not shown or waited - shown >= 60:
                log.warning("%s: the session that ran the statement at %s (connection %d) is still running; "
                            "waiting for it to finish (%.0fs so far)", self.name, trx.start, intent.connection_id,
                            waited)
                shown = waited or 0.001
            if self.reconnector.stopping:   # SIGINT/SIGTERM (Reconnector.stop_waiting, set by the run)
                raise Interrupted(f"stopped while waiting for connection {intent.connection_id} to finish the "
                                  f"statement at {trx.start}")
            if waited > DDL_WAIT_LIMIT_S:
                raise TargetError(f"connection {intent.connection_id} of the target is still running the statement "
                                  f"at {trx.start} after {waited:.0f}s; rerun once it has finished (whether it ran "
                                  "is decided then)")
            time.sleep(0.2)

    def _lose_connection(self) -> None:
        """The server ends this session (fault injection: a connection lost after a statement ran)."""
        assert self.conn is not None
        with contextlib.suppress(pymysql.err.MySQLError):
            self._send(f"KILL {self.conn.thread_id()}".encode())

    def _run(self, batch: Batch, steps: list[Step], *, commit: bool) -> None:
        trxs = batch.members
        first = trxs[0]
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            if last and commit:
                if self.commit_gate is not None and not self.commit_gate(batch):
                    self._rollback()
                    raise _Retry("waited too long for earlier transactions to commit (commit order)")
                crash_point("before-commit")
            try:
                self._send(step.sql, step.checks)
            except _Mismatch as exc:
                self._rollback()
                raise exc.check.error(exc.found) from None
            except pymysql.err.MySQLError as exc:
                if step.statement and step.expected_error and error_code(exc) == step.expected_error:
                    continue  # the source got the same error and logged the statement anyway
                # Not a source statement: binreplay's own, which write the binlog's row images.
                fault = classify(exc, binlog_statement=b"BINLOG '" in step.sql, row_images=not step.statement)
                if fault is Fault.LOST:
                    connection_id = self.conn.thread_id() if self.conn is not None else None
                    self.close()
                    if commit and last and self._was_committed(batch, connection_id):
                        return
                    # Nothing of the group is committed: the server rolled it back.
                    raise _Retry(f"lost the connection ({describe(exc)})") from None
                self._rollback()
                if fault is Fault.RETRY and not any(t.kind is TrxKind.DDL for t in trxs):
                    raise _Retry(describe(exc)) from None
                if fault is Fault.CORRUPT:
                    raise _Corrupt(describe(exc)) from None
                raise rejected_error(error_code(exc))(
                    f"the target rejected {rejected_transactions(trxs, step)}: {describe(exc)}") from None
            if step.statement and step.expected_error:
                log.warning("%s: the statement at %s failed on the source with error %s but succeeded on the "
                            "target", self.name, first.start, step.expected_error)

    def _rollback(self) -> None:
        """Roll back the open transaction, noting whether that undid all of it: a deadlock has rolled
        it back already (so nothing is known of what was kept), and the server warns when changes to
        non-transactional tables stay (error 1196)."""
        try:
            was_open = self._in_transaction()
            self._send(b"ROLLBACK")
            assert self.conn is not None
            kept = any(w[1] == ER_WARNING_NOT_COMPLETE_ROLLBACK for w in self.conn.show_warnings() or ())
            self._rollback_kept |= kept
            self._rolled_back_clean = was_open and not kept
        except Exception:  # noqa: BLE001 - the connection may be gone; the server rolls back then
            self.close()

    def _in_transaction(self) -> bool:
        """Whether the session has a transaction open (MariaDB's @@in_transaction; a server without it:
        False, i.e. not known to be open)."""
        assert self.conn is not None
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT @@in_transaction")
                row = cur.fetchone()
        except pymysql.err.MySQLError as exc:
            if classify(exc) is Fault.LOST:
                raise
            return False
        return bool(row and row[0])

    def _was_committed(self, batch: Batch, connection_id: int | None = None) -> bool:
        """A connection lost during COMMIT: the progress table says whether it committed (once the
        target is back, if it went away, and once the session `connection_id`, if given, no longer
        runs the COMMIT: the server finishes it before it notices that its client is gone)."""
        def look_up() -> bool:
            conn = connect(self.cfg)
            try:
                started = time.monotonic()
                while (connection_id is not None and time.monotonic() - started < COMMIT_WAIT_LIMIT_S
                       and session_running(conn, connection_id, b"COMMIT")):
                    time.sleep(0.1)
                return self.base_store.on_connection(conn).was_applied(batch.file_index, batch.record_end)
            finally:
                conn.close()

        try:
            return self.reconnector.call(look_up)
        except TargetError as exc:
            raise TargetError(f"lost the connection during COMMIT of the transaction at {batch.start} and could "
                              f"not learn its outcome ({exc}; a rerun lets the progress table decide)") from None


def rejected_transactions(trxs: list[Transaction], step: Step) -> str:
    """The source transaction(s) a refused step belonged to, as a user can look them up: position and
    GTID, and the tables their row events write or the source statement (never BINLOG's base64)."""
    def at(trx: Transaction) -> str:
        return f"{trx.start} (GTID {trx.gtid})" if trx.gtid is not None else f"{trx.start} (no GTID)"

    where = (f"the transaction at {at(trxs[0])}" if len(trxs) == 1 else
             f"one of the {len(trxs)} transactions from {at(trxs[0])} to {at(trxs[-1])}")
    if step.statement:
        text = " ".join(step.sql[:300].decode("utf-8", "replace").split())
        return f"{where}, statement {text[:150]!r}"
    tables = sorted({f"{db}.{table}" for trx in trxs for db, table in trx.tables})
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    return f"{where}, writing {shown}" if tables else where
