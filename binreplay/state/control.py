"""The replay's own session on the target (next to the workers' sessions).

It holds the run's named lock (one binreplay per target), writes the low-water mark, and
reads table definitions for conflict keys and schema checks. Losing it (killed, a network
blip, the target restarting) must not end a long replay: operations are retried once on a
new connection after the lock is taken again. Every operation run through it is either
read-only or idempotent (the checkpoint write is insert-ignore plus prunes), so redoing one
after a reconnect is safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import TypeVar

import pymysql

from binreplay.errors import StateConflictError, TargetError, connection_lost
from binreplay.server.connection import ServerConfig, connect
from binreplay.server.tables import SchemaCache
from binreplay.state.store import ProgressStore

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a lost control connection is retried (a target restart takes a few seconds).
RECONNECT_WINDOW_S = float(os.environ.get("BINREPLAY_RECONNECT_WINDOW", "30"))


class ControlSession:
    def __init__(self, cfg: ServerConfig, progress_schema: str) -> None:
        self.cfg = cfg
        self.conn: pymysql.connections.Connection = connect(cfg)
        self.store = ProgressStore(self.conn, progress_schema)
        self.schema = SchemaCache(self.conn)

    def run(self, operation: Callable[[], T]) -> T:
        """Run `operation`; if the connection was lost, reconnect, retake the lock and redo it once."""
        try:
            return operation()
        except Exception as exc:
            if not connection_lost(exc):
                raise
            log.warning("lost the control connection (%s); reconnecting", exc)
        self._reconnect()
        return operation()

    def _reconnect(self) -> None:
        self.close()
        deadline = time.monotonic() + RECONNECT_WINDOW_S
        while True:
            try:
                self.conn = conn = connect(self.cfg)
                self.store.use_connection(conn)
                self.schema.use_connection(conn)
                self.store.prepare_session()
                # The named lock goes with the old session, but only once the server has finished
                # killing it: wait a little for that.
                self.store.lock(wait_s=10)
                return
            except StateConflictError:
                holder = self.store.lock_holder()
                raise StateConflictError(
                    f"reconnected to the target, but the run's lock is held by connection {holder}: if that is "
                    f"this run's old session, KILL {holder} on the target and rerun the same command; otherwise "
                    "another binreplay is replaying into it") from None
            except Exception as exc:
                if not (isinstance(exc, TargetError) or connection_lost(exc)):
                    raise
                if time.monotonic() > deadline:
                    raise TargetError(f"lost the control connection to the target and could not reconnect within "
                                      f"{RECONNECT_WINDOW_S:.0f} s") from None
                time.sleep(1.0)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already
            self.conn.close()
