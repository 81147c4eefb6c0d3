"""The progress tables read back, for `binreplay status`: read-only queries with typed results.

store.py writes these tables during a replay; this module only reads what a run left there, and
who holds the lock a running replay takes (the lock's name and query are store.py's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pymysql

from binreplay.server.catalog import process_entry, table_exists
from binreplay.server.sql import quote_ident
from binreplay.state.store import ProgressStore

Connection = pymysql.connections.Connection

# The progress tables (their definitions are in store.py).
RUNS = "runs"
APPLIED = "applied"
CHECKPOINT = "checkpoint"
DDL_JOURNAL = "ddl_journal"


@dataclass(frozen=True)
class RunRecord:
    """A row of `runs`."""
    run_id: int
    state: str                      # as the run left it: running, complete, interrupted, failed, abandoned
    arguments: dict
    binlog_files: list[str]         # what file_index counts
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    host: str
    pid: int
    last_error: str | None


@dataclass(frozen=True)
class LowWaterMark:
    """The run's `checkpoint` row: everything up to (file_index, pos) is applied."""
    binlog_file: str
    file_index: int
    pos: int
    transactions: int               # transactions read (applied or outside the selection) up to it


@dataclass(frozen=True)
class AppliedTransaction:
    """A row of `applied`: a transaction committed above the mark."""
    binlog_file: str
    end_pos: int
    gtid: str | None
    applied_at: datetime


@dataclass(frozen=True)
class PendingDdl:
    """A `ddl_journal` entry started but not recorded as done."""
    binlog_file: str
    end_pos: int
    statement: bytes
    started_at: datetime


@dataclass(frozen=True)
class Client:
    """A connection as the process list shows it."""
    user: str
    host: str
    connected_s: int


@dataclass(frozen=True)
class LockHolder:
    """The connection holding the run lock, i.e. a replay running now."""
    connection_id: int
    client: Client | None           # None: gone from the process list by the time it was looked up


class ProgressReadback:
    """Read-only queries of one progress schema over one connection; timestamps come back in UTC."""

    def __init__(self, conn: Connection, schema: str = "binreplay") -> None:
        self.conn, self.schema = conn, schema
        self.q = quote_ident(schema)
        # TIMESTAMP columns are returned in the session's time zone: make it UTC for every reader.
        self._rows("SET SESSION time_zone = '+00:00'")

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())

    def last_run(self) -> RunRecord | None:
        """The latest run recorded (None: no progress tables, or no run yet)."""
        if not table_exists(self.conn, self.schema, RUNS):
            return None
        rows = self._rows(f"SELECT run_id, state, arguments, binlog_files, started_at, updated_at, finished_at, host, "
                          f"pid, last_error FROM {self.q}.{RUNS} ORDER BY run_id DESC LIMIT 1")
        if not rows:
            return None
        run_id, state, arguments, files, started, updated, finished, host, pid, last_error = rows[0]
        return RunRecord(int(run_id), state, json.loads(arguments), json.loads(files), started, updated, finished,
                         host, pid, last_error)

    def low_water_mark(self, run_id: int) -> LowWaterMark | None:
        rows = self._rows(f"SELECT binlog_file, file_index, pos, transactions FROM {self.q}.{CHECKPOINT} "
                          "WHERE run_id = %s ORDER BY file_index DESC, pos DESC LIMIT 1", (run_id,))
        if not rows:
            return None
        file, file_index, pos, transactions = rows[0]
        return LowWaterMark(file, int(file_index), int(pos), int(transactions))

    def _above(self, run_id: int, mark: LowWaterMark | None) -> tuple[str, tuple]:
        file_index, pos = (mark.file_index, mark.pos) if mark is not None else (-1, 0)
        return ("run_id = %s AND (file_index > %s OR (file_index = %s AND end_pos > %s))",
                (run_id, file_index, file_index, pos))

    def applied_above(self, run_id: int, mark: LowWaterMark | None) -> int:
        """How many `applied` rows lie above the mark (not yet folded into it)."""
        where, args = self._above(run_id, mark)
        return int(self._rows(f"SELECT COUNT(*) FROM {self.q}.{APPLIED} WHERE {where}", args)[0][0])

    def furthest_applied(self, run_id: int, mark: LowWaterMark | None) -> AppliedTransaction | None:
        where, args = self._above(run_id, mark)
        rows = self._rows(f"SELECT binlog_file, end_pos, gtid, applied_at FROM {self.q}.{APPLIED} WHERE {where} "
                          "ORDER BY file_index DESC, end_pos DESC LIMIT 1", args)
        return AppliedTransaction(*rows[0]) if rows else None

    def pending_ddl(self, run_id: int) -> list[PendingDdl]:
        return [PendingDdl(f, p, bytes(s), t) for f, p, s, t in self._rows(
            f"SELECT binlog_file, end_pos, statement, started_at FROM {self.q}.{DDL_JOURNAL} "
            "WHERE run_id = %s AND state = 'started' ORDER BY file_index, end_pos", (run_id,))]

    def lock_holder(self) -> LockHolder | None:
        """Who holds the lock a replay takes for its whole run (store.ProgressStore.lock)."""
        holder = ProgressStore(self.conn, self.schema).lock_holder()
        if holder is None:
            return None
        who = process_entry(self.conn, holder)
        return LockHolder(holder, Client(who.user, who.host, who.time_s) if who is not None else None)
