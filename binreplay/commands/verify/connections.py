"""verify's connections: one to each server per thread, both servers queried at once."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pymysql

from binreplay.commands.verify.results import VerifyOptions
from binreplay.errors import TargetError, describe
from binreplay.server.connection import ServerConfig, connect

Connection = pymysql.connections.Connection
T = TypeVar("T")


@dataclass
class Side:
    """One server's connection, with its role for messages."""
    role: str            # "reference" or "target"
    cfg: ServerConfig
    conn: Connection

    def rows(self, sql: str, args: list | tuple | None = None) -> list[tuple]:
        with self._errors_named(), self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def ask(self, question: Callable[..., T], *args: Any) -> T:
        """A server.catalog query of this server, e.g. `side.ask(catalog.tables, schemas)`."""
        with self._errors_named():
            return question(self.conn, *args)

    @contextmanager
    def _errors_named(self) -> Iterator[None]:
        try:
            yield
        except pymysql.err.MySQLError as exc:
            raise TargetError(f"{self.role} {self.cfg.where}: {describe(exc)}") from None

    def close(self) -> None:
        with suppress(pymysql.err.Error):
            self.conn.close()


def _open(role: str, cfg: ServerConfig) -> Side:
    conn = connect(cfg, role=role, multi_statements=False)
    side = Side(role, cfg, conn)
    # UTC: a TIMESTAMP is the same instant whatever the servers' time zones are.
    side.rows("SET SESSION time_zone = '+00:00'")
    return side


@dataclass
class Pair:
    ref: Side
    tgt: Side
    # Runs the target's half of each query while this thread runs the reference's: both servers work at once.
    helper: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="verify-tgt"))

    def both(self, sql: str, args: list) -> tuple[list[tuple], list[tuple]]:
        on_target = self.helper.submit(self.tgt.rows, sql, args)
        try:
            on_reference = self.ref.rows(sql, args)
        finally:
            on_target_rows = on_target.result()
        return on_reference, on_target_rows

    def close(self) -> None:
        self.helper.shutdown()
        self.ref.close()
        self.tgt.close()


@contextmanager
def open_pairs(opts: VerifyOptions, count: int) -> Iterator[queue.Queue[Pair]]:
    """`count` connection pairs (one per thread), all closed at the end."""
    ref_cfg, tgt_cfg = opts.reference.resolved(), opts.target.resolved()
    opened: list[Pair] = []
    pool: queue.Queue[Pair] = queue.Queue()
    try:
        for _ in range(count):
            pair = Pair(_open("reference", ref_cfg), _open("target", tgt_cfg))
            opened.append(pair)
            pool.put(pair)
        yield pool
    finally:
        for pair in opened:
            pair.close()
