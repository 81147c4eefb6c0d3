"""The replay's own session on the target (next to the workers' sessions).

It holds the run's named lock (one binreplay per target), writes the low-water mark, and
reads table definitions for conflict keys and schema checks. Losing it (killed, a network
blip, the target restarting) must not end a long replay: an operation is redone on a new
connection once the lock is taken again, waiting for the target up to --reconnect-timeout
(server/reconnect.py). Every operation run through it is either read-only or idempotent (the
checkpoint write is insert-ignore plus prunes), so redoing one after a reconnect is safe.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

import pymysql

from binreplay.errors import StateConflictError, connection_lost
from binreplay.server.connection import ServerConfig, connect
from binreplay.server.reconnect import Reconnector
from binreplay.server.tables import SchemaCache
from binreplay.state.store import ProgressStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class ControlSession:
    def __init__(self, cfg: ServerConfig, progress_schema: str, reconnector: Reconnector) -> None:
        self.cfg = cfg
        self.reconnector = reconnector     # shared with the workers: one wait per outage
        self.conn: pymysql.connections.Connection = connect(cfg)
        self.store = ProgressStore(self.conn, progress_schema)
        self.schema = SchemaCache(self.conn)

    def run(self, operation: Callable[[], T]) -> T:
        """Run `operation`; if the connection was lost, reconnect (waiting for the target, see
        server/reconnect.py), retake the lock and redo it."""
        while True:
            try:
                return operation()
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                log.warning("lost the control connection (%s); reconnecting", exc)
            self._reconnect()

    def _reconnect(self) -> None:
        self.close()
        try:
            self.reconnector.call(self._open)
        except StateConflictError:
            holder = self.store.lock_holder()
            raise StateConflictError(
                f"reconnected to the target, but the run's lock is held by connection {holder}: if that is "
                f"this run's old session, KILL {holder} on the target and rerun the same command; otherwise "
                "another binreplay is replaying into it") from None

    def _open(self) -> None:
        self.conn = conn = connect(self.cfg)
        self.store.use_connection(conn)
        self.schema.use_connection(conn)
        self.store.prepare_session()
        # The named lock goes with the old session, but only once the server has finished
        # killing it: wait a little for that.
        self.store.lock(wait_s=10)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already
            self.conn.close()
