"""Applying: one target session that applies transactions exactly, with their progress rows.

Row transactions run as BEGIN ... <their changes> ... INSERT progress; COMMIT, so the data
and the record of it commit together. Several consecutive source transactions may share
one target commit (a group): their progress rows are in that same commit.
A standalone statement (DDL) cannot carry its progress row; it is journaled around instead
(see checkpoint.py). Each worker of the pool owns one Applier and one connection.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import pymysql

from binreplay.state.store import ProgressStore
from binreplay.errors import Fault, TargetError, classify, describe, error_code
from binreplay.devtools.faults import crash_point
from binreplay.model import MariadbGtid, MysqlGtid, Transaction, TrxKind
from binreplay.apply.row_checks import GUARD, RESET, RowCheck
from binreplay.apply.statements import SessionState, StatementBuilder, Step, merge_binlog_parts, pack
from binreplay.server.sql import quote_string
from binreplay.server.connection import ServerConfig, ServerInfo, connect

log = logging.getLogger(__name__)

class _Retry(Exception):
    """A group failed in a way that is safe to retry (deadlock, lock wait, lost connection)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Mismatch(Exception):
    """A row statement matched another number of rows than the source changed (--apply sql)."""

    def __init__(self, check: RowCheck, found: int) -> None:
        super().__init__(check.position)
        self.check, self.found = check, found


class Applier:
    def __init__(self, cfg: ServerConfig, store: ProgressStore, server: ServerInfo,
                 collations: dict[int, tuple[str, str]], *, preserve_gtids: bool = False,
                 name: str = "worker-0", max_retries: int = 10, sql_apply=None) -> None:
        self.cfg = cfg
        self.base_store = store
        self.store = store
        self.server = server
        self.preserve_gtids = preserve_gtids
        self.name = name
        self.max_retries = max_retries
        self.retries = 0                      # retried groups (deadlocks, lock waits, lost connections)
        self.busy_s = 0.0                     # time spent applying, for the parallelism figure
        self.groups = 0                       # target commits done
        self.current = "idle"                 # what it is applying (shown with -v)
        self.state = SessionState()
        # --apply sql (`sql_apply` is the workers' shared sql_apply.SqlApplyShared): rows become plain SQL.
        translator = None
        if sql_apply is not None:
            from binreplay.apply.sql_rows import SqlTranslator

            translator = SqlTranslator(sql_apply, lambda: self.conn)
        self.builder = StatementBuilder(self.state, collations, flavor=server.flavor, sql=translator)
        self.conn: pymysql.connections.Connection | None = None
        # Called before COMMIT with the group; False = not our turn in time (--preserve-commit-order).
        self.commit_gate: Callable[[list[Transaction]], bool] | None = None

    # -- connection ------------------------------------------------------------

    def open(self) -> None:
        # --apply sql: UPDATE reports the rows it found, not only those it changed (row_checks.py).
        self.conn = connect(self.cfg, found_rows=self.builder.sql is not None)
        # Row changes are applied by primary key; READ COMMITTED takes no gap locks, so
        # workers applying disjoint rows do not block each other on neighbouring gaps.
        self._send(b"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self.store = self.base_store.on_connection(self.conn)
        self.state.forget()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
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
                cur.execute(sql)
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

    def apply_group(self, trxs: list[Transaction]) -> None:
        """Apply consecutive source transactions in one target commit (DDL: alone, journaled)."""
        self.current = f"{len(trxs)} trx from {trxs[0].start}"
        try:
            self._apply_group(trxs)
            self.groups += 1
        finally:
            self.current = "idle"

    def _apply_group(self, trxs: list[Transaction]) -> None:
        for attempt in range(self.max_retries + 1):
            if self.conn is None:
                self.open()
            try:
                if len(trxs) == 1 and trxs[0].kind is TrxKind.DDL:
                    self._apply_standalone(trxs[0])
                elif len(trxs) == 1 and trxs[0].non_transactional:
                    self._apply_rolled_back(trxs[0])
                else:
                    self._apply_transactional(trxs)
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

    def _apply_transactional(self, trxs: list[Transaction]) -> None:
        # A group shares one commit, so it can only carry one source GTID: grouping is off
        # with --preserve-gtids (the pool sends groups of one).
        prefix = self._gtid_sets(trxs[0]) + [b"BEGIN"] + self._row_check_reset()
        if trxs[0].kind in (TrxKind.STATEMENT, TrxKind.MIXED):
            # Statements run alone; keep the server's default isolation for them (a statement-format
            # binlog on the target refuses READ COMMITTED).
            prefix.insert(0, b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        suffix = self._row_check_guard() + [self.store.applied_insert(trxs), b"COMMIT"] + self._gtid_reset(trxs[0])
        pieces = self._pieces(trxs)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            try:
                parts = merge_binlog_parts(self._body(piece), self.builder.chunk_bytes)
            except Exception:
                if i and self.conn is not None:
                    self._rollback()   # earlier pieces ran in the open transaction
                raise
            self._run(trxs, pack(parts, prefix=prefix if i == 0 else [], suffix=suffix if last else []),
                      commit=last)
        crash_point("after-commit")

    def _pieces(self, trxs: list[Transaction]) -> list[list[Transaction]]:
        """What is built (and, in SQL mode, translated) at once: the whole group, except that in SQL
        mode rows following a statement are translated after it ran (sql_apply.translation_pieces)."""
        if self.builder.sql is None or not any(t.kind in (TrxKind.STATEMENT, TrxKind.MIXED) for t in trxs):
            return [trxs]
        from binreplay.apply.sql_rows import translation_pieces

        return [[piece] for trx in trxs for piece in translation_pieces(trx)]

    def _body(self, trxs: list[Transaction]) -> list:
        """The statements of `trxs`. In SQL mode building them queries the target (table definitions,
        collations): a connection lost meanwhile is retried like one lost while applying."""
        try:
            return [part for trx in trxs for part in self.builder.body(trx)]
        except pymysql.err.MySQLError as exc:
            if classify(exc) is Fault.LOST:
                self.close()
                raise _Retry(f"lost the connection ({describe(exc)})") from None
            raise TargetError(f"the target failed while the transaction at {trxs[0].start} was prepared: "
                              f"{describe(exc)}") from None

    def _apply_rolled_back(self, trx: Transaction) -> None:
        """The source rolled back but kept non-transactional changes: do the same, then record
        it on its own (exactly-once cannot hold for such tables; the run warns about them)."""
        parts = self._body([trx])
        self._run([trx], pack(parts, prefix=self._gtid_sets(trx) + [b"BEGIN"] + self._row_check_reset(),
                              suffix=self._row_check_guard() + [b"ROLLBACK"]), commit=False)
        self._run([trx], [Step(self.store.applied_insert([trx]))], commit=False)

    def _row_check_reset(self) -> list[bytes]:
        return [RESET] if self.builder.sql is not None else []

    def _row_check_guard(self) -> list[bytes]:
        """Before COMMIT: fail unless every row statement matched its rows (row_checks.py)."""
        return [GUARD] if self.builder.sql is not None else []

    def _apply_standalone(self, trx: Transaction) -> None:
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
        self._run([trx], steps, commit=False)
        crash_point("ddl-executed")
        self.store.ddl_done(trx)

    def _run(self, trxs: list[Transaction], steps: list[Step], *, commit: bool) -> None:
        first = trxs[0]
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            if last and commit:
                if self.commit_gate is not None and not self.commit_gate(trxs):
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
                fault = classify(exc)
                if fault is Fault.LOST:
                    self.close()
                    if commit and last and self._was_committed(first):
                        return
                    # Nothing of the group is committed: the server rolled it back.
                    raise _Retry(f"lost the connection ({describe(exc)})") from None
                self._rollback()
                if fault is Fault.RETRY and not any(t.kind is TrxKind.DDL for t in trxs):
                    raise _Retry(describe(exc)) from None
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

    def _was_committed(self, trx: Transaction) -> bool:
        """A connection lost during COMMIT: the progress table says whether it committed."""
        for attempt in range(5):
            try:
                conn = connect(self.cfg)
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"SELECT 1 FROM {self.store.q}.applied WHERE run_id=%s AND file_index=%s "
                                    "AND end_pos=%s", (self.store.run_id, trx.file_index, trx.end_pos))
                        return cur.fetchone() is not None
                finally:
                    conn.close()
            except TargetError:
                time.sleep(0.5 * (attempt + 1))
        raise TargetError(f"lost the connection during COMMIT of the transaction at {trx.start} and could not "
                          "reconnect to learn its outcome (a rerun lets the progress table decide)")
