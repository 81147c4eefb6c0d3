"""Applying: one target session that applies transactions exactly, with their progress row.

A row or statement transaction runs as BEGIN ... <its changes> ... INSERT progress; COMMIT,
so the data and the record of it commit together. A standalone statement (DDL) cannot
carry its progress row; it is journaled around instead (see checkpoint.py).
The scheduler of the parallel issue gives each worker its own Applier.
"""

from __future__ import annotations

import logging
import time

import pymysql

from binreplay.checkpoint import ProgressStore
from binreplay.faults import crash_point
from binreplay.errors import TargetError
from binreplay.model import MariadbGtid, MysqlGtid, Transaction, TrxKind
from binreplay.statements import SessionState, StatementBuilder, Step, pack, quote_string
from binreplay.target import (CONNECTION_LOST, ServerInfo, TargetConfig, connect, describe_sql_error,
                              sql_error_code)

log = logging.getLogger(__name__)


class Applier:
    def __init__(self, cfg: TargetConfig, store: ProgressStore, server: ServerInfo,
                 collations: dict[int, tuple[str, str]], *, preserve_gtids: bool = False,
                 name: str = "worker-0") -> None:
        self.cfg = cfg
        self.store = store
        self.server = server
        self.preserve_gtids = preserve_gtids
        self.name = name
        self.state = SessionState()
        self.builder = StatementBuilder(self.state, collations, flavor=server.flavor)
        self.conn: pymysql.connections.Connection | None = None
        self.rows_events = 0

    # -- connection ------------------------------------------------------------

    def open(self) -> None:
        self.conn = connect(self.cfg)
        self.state.forget()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self.conn = None

    def _send(self, sql: bytes) -> None:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(sql)
            while cur.nextset():
                pass

    # -- applying ----------------------------------------------------------------

    def apply(self, trx: Transaction) -> None:
        if self.conn is None:
            self.open()
        if trx.kind is TrxKind.DDL:
            self._apply_standalone(trx)
        else:
            self._apply_transactional(trx)

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

    def _apply_transactional(self, trx: Transaction) -> None:
        parts = self.builder.body(trx)
        record = self.store.applied_insert([trx])
        prefix = self._gtid_sets(trx) + [b"BEGIN"]
        if trx.non_transactional:
            # The source rolled back but kept non-transactional changes: do the same,
            # then record it on its own (exactly-once cannot hold for such tables).
            steps = pack(parts, prefix=prefix, suffix=[b"ROLLBACK"])
            self._run(trx, steps, commit=False)
            self._run(trx, [Step(record)], commit=False)
            return
        steps = pack(parts, prefix=prefix, suffix=[record, b"COMMIT"] + self._gtid_reset(trx))
        self._run(trx, steps, commit=True)
        crash_point("after-commit")

    def _apply_standalone(self, trx: Transaction) -> None:
        parts = self.builder.body(trx)
        statement = b"\n".join(p.sql for p in parts if p.kind == "statement")
        intent = self.store.ddl_intent(trx)
        if intent is not None:
            # An earlier process started this statement and died before recording it.
            if self.store.schema_fingerprint() != intent.schema_before:
                log.warning("%s: statement at %s had taken effect before the interruption; recording it",
                            self.name, trx.start)
                self.store.ddl_done(trx)
                return
            log.warning("%s: statement at %s had not taken effect before the interruption; running it",
                        self.name, trx.start)
        self.store.ddl_started(trx, statement, self.store.schema_fingerprint())
        crash_point("ddl-started")
        steps = pack(parts, prefix=self._gtid_sets(trx), suffix=self._gtid_reset(trx))
        self._run(trx, steps, commit=False)
        crash_point("ddl-executed")
        self.store.ddl_done(trx)

    def _run(self, trx: Transaction, steps: list[Step], *, commit: bool) -> None:
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            if last and commit:
                crash_point("before-commit")
            try:
                self._send(step.sql)
            except pymysql.err.MySQLError as exc:
                code = sql_error_code(exc)
                if step.statement and step.expected_error and code == step.expected_error:
                    continue  # the source got the same error and logged the statement anyway
                if code in CONNECTION_LOST or isinstance(exc, pymysql.err.InterfaceError):
                    self.close()
                    if commit and last and self._was_committed(trx):
                        return
                    raise TargetError(f"lost the connection to the target while applying the transaction at "
                                      f"{trx.start} ({trx.gtid or 'no GTID'}); nothing of it is committed; "
                                      "rerun to resume") from None
                self._rollback()
                what = step.sql[:200].decode("utf-8", "replace").replace("\n", " ")
                raise TargetError(f"the target rejected the transaction at {trx.start} "
                                  f"({trx.gtid or 'no GTID'}): {describe_sql_error(exc)} [in: {what}]") from None
            if step.statement and step.expected_error:
                log.warning("%s: statement at %s failed on the source with error %s but succeeded on the target",
                            self.name, trx.start, step.expected_error)

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
                          "reconnect to learn its outcome; rerun to resume (the progress table decides)")
