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

from binreplay.apply.encoders import Encoder
from binreplay.apply.packets import SessionState, Step, pack
from binreplay.apply.row_checks import RowCheck
from binreplay.devtools.faults import crash_point
from binreplay.errors import BadInputError, Fault, TargetError, classify, describe, error_code
from binreplay.model import MariadbGtid, MysqlGtid, Transaction, TrxKind
from binreplay.schedule.batches import Batch
from binreplay.server.connection import ServerConfig, connect
from binreplay.server.sql import quote_string
from binreplay.state.store import ProgressStore

log = logging.getLogger(__name__)

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
                 preserve_gtids: bool = False, name: str = "worker-0", max_retries: int = 10) -> None:
        self.cfg = cfg
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

    # -- connection ------------------------------------------------------------

    def open(self) -> None:
        # --apply sql: UPDATE reports the rows it found, not only those it changed (row_checks.py).
        self.conn = connect(self.cfg, found_rows=self.encoder.found_rows)
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
                self.open()
            try:
                if len(trxs) == 1 and trxs[0].kind is TrxKind.DDL:
                    self._apply_standalone(batch)
                elif len(trxs) == 1 and trxs[0].non_transactional:
                    self._apply_rolled_back(batch)
                else:
                    self._apply_transactional(batch)
                return
            except (_Corrupt, BadInputError) as exc:
                # The target's server found an event corrupt, or (--apply sql) decoding one failed.
                self.state.forget()
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
            except _Retry as exc:
                self.retries += 1  # read by the reporter (an int: no lock needed)
                # Settings built for steps that never ran would otherwise be thought sent.
                self.state.forget()
                if attempt == self.max_retries:
                    raise TargetError(f"gave up on the transaction at {trxs[0].start} after {attempt + 1} attempts "
                                      f"({exc.reason})") from None
                delay = min(0.05 * 2 ** attempt, 2.0)
                log.info("%s: %s at %s; retrying in %.2fs", self.name, exc.reason, trxs[0].start, delay)
                time.sleep(delay)

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
        if trxs[0].kind in (TrxKind.STATEMENT, TrxKind.MIXED):
            # Statements run alone; keep the server's default isolation for them (a statement-format
            # binlog on the target refuses READ COMMITTED).
            prefix.insert(0, b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        suffix = enc.check_guard() + [self.store.applied_insert_of(batch), b"COMMIT"] + self._gtid_reset(trxs[0])
        pieces = enc.pieces(trxs)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            try:
                parts = self._body(piece, batch.statement if len(pieces) == 1 else None)
            except Exception:
                if i and self.conn is not None:
                    self._rollback()   # earlier pieces ran in the open transaction
                raise
            self._run(batch, pack(parts, prefix=prefix if i == 0 else [], suffix=suffix if last else []),
                      commit=last)
        crash_point("after-commit")

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
        trx = batch.members[0]
        parts = self._body([trx])
        statement = b"\n".join(p.sql for p in parts if p.kind == "statement")
        intent = self.store.ddl_intent(trx)
        if intent is not None:
            # An earlier process started this statement and died before recording it.
            if self.store.schema_fingerprint() != intent.schema_before:
                log.warning("%s: the statement at %s had taken effect before the interruption; recording it",
                            self.name, trx.start)
                self.store.ddl_done(trx)
                return
            log.warning("%s: the statement at %s had not taken effect before the interruption; running it",
                        self.name, trx.start)
        self.store.ddl_started(trx, statement, self.store.schema_fingerprint())
        crash_point("ddl-started")
        steps = pack(parts, prefix=self._gtid_sets(trx), suffix=self._gtid_reset(trx))
        self._run(batch, steps, commit=False)
        crash_point("ddl-executed")
        self.store.ddl_done(trx)

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
                    self.close()
                    if commit and last and self._was_committed(batch):
                        return
                    # Nothing of the group is committed: the server rolled it back.
                    raise _Retry(f"lost the connection ({describe(exc)})") from None
                self._rollback()
                if fault is Fault.RETRY and not any(t.kind is TrxKind.DDL for t in trxs):
                    raise _Retry(describe(exc)) from None
                if fault is Fault.CORRUPT:
                    raise _Corrupt(describe(exc)) from None
                what = step.sql[:200].decode("utf-8", "replace").replace("\n", " ")
                raise TargetError(f"the target rejected the transaction at {first.start} "
                                  f"({first.gtid or 'no GTID'}): {describe(exc)} [in: {what}]") from None
            if step.statement and step.expected_error:
                log.warning("%s: the statement at %s failed on the source with error %s but succeeded on the "
                            "target", self.name, first.start, step.expected_error)

    def _rollback(self) -> None:
        try:
            self._send(b"ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection may be gone; the server rolls back then
            self.close()

    def _was_committed(self, batch: Batch) -> bool:
        """A connection lost during COMMIT: the progress table says whether it committed."""
        for attempt in range(5):
            try:
                conn = connect(self.cfg)
                try:
                    return self.base_store.on_connection(conn).was_applied(batch.file_index, batch.record_end)
                finally:
                    conn.close()
            except TargetError:
                time.sleep(0.5 * (attempt + 1))
        raise TargetError(f"lost the connection during COMMIT of the transaction at {batch.start} and could not "
                          "reconnect to learn its outcome (a rerun lets the progress table decide)")


def one_at_a_time(batch: Batch) -> list[Batch]:
    """`batch` as batches of one member each, in order, together covering its range: each records
    the source range from the end of the member before it (the batch's start for the first)."""
    out = []
    start = batch.start_pos
    for trx in batch.members:
        out.append(Batch(batch.seq, batch.file_index, batch.file, start, trx.end_pos, [trx], covered=1,
                         size=trx.end_pos - trx.start_pos))
        start = trx.end_pos
    return out
