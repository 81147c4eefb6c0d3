"""`--apply sql`: the SQL text of row changes to one table, each with the row count it must match.

A `TablePlan` (built by sql_rows.SqlTranslator from the TABLE_MAP and the target's definition)
says how each column's value is written (an exact literal, sql_values.py) and how a row is
located: by the primary key, or for a table without one by every column with NULL-safe `<=>`
(strings compared byte-exactly through a NO PAD binary collation) and LIMIT 1, so of duplicate
rows one is changed, as the source did. Adjacent rows of one table and kind share a statement
(`Batch`): a multi-row INSERT, or `DELETE ... WHERE pk IN (...)` for a one-column primary key.
UPDATEs are one statement a row. Every statement carries the rows it must match (row_checks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from binreplay.apply.packets import PACKET_MARGIN
from binreplay.apply.row_checks import RowCheck
from binreplay.binlog import rows as R
from binreplay.errors import UnsupportedError

MAX_STATEMENT_BYTES = 1 << 20    # a batch of rows is at most this long (characters), unless one row is longer


def batch_budget(max_packet: int) -> int:
    """The longest batch statement (in characters) for a target whose statements may have
    `max_packet` bytes: a character is at most 4 bytes, and some room stays for what is joined
    around it (packets.PACKET_MARGIN)."""
    return max(1, min(MAX_STATEMENT_BYTES, (max_packet - PACKET_MARGIN) // 4))


@dataclass(frozen=True)
class RowStatement:
    """One generated statement, the rows event flags it runs under, and the rows it must match."""

    flags: int
    sql: str
    check: RowCheck


@dataclass(frozen=True)
class PlanColumn:
    index: int            # position in the row image
    name: str             # quoted identifier
    render: Callable[[bytes], str]
    match: Callable[[str], str]     # literal -> the comparison used in a WHERE without a primary key


@dataclass
class TablePlan:
    qualified: str
    walker: R.RowWalker
    columns: tuple[PlanColumn, ...]      # writable columns (generated ones left out)
    key: tuple[PlanColumn, ...] | None   # primary key columns, None = match all columns
    target_known: bool = True         # built with the target's definition (False: the table was missing)


def values_of(columns: tuple[PlanColumn, ...], image: tuple) -> list[tuple[PlanColumn, str]]:
    out = []
    for c in columns:
        v = image[c.index]
        if v is R.ABSENT:
            continue
        out.append((c, "NULL" if v is None else c.render(v)))
    return out


def where_clause(plan: TablePlan, image: tuple) -> str:
    if plan.key is not None:
        parts = []
        for c in plan.key:
            v = image[c.index]
            if v is R.ABSENT:
                raise UnsupportedError(f"{plan.qualified}: the before image lacks primary key column {c.name}")
            parts.append(f"{c.name} IS NULL" if v is None else f"{c.name}={c.render(v)}")
        return " WHERE " + " AND ".join(parts)
    parts = []
    for c in plan.columns:
        v = image[c.index]
        if v is R.ABSENT:
            continue
        parts.append(f"{c.name} IS NULL" if v is None else f"{c.name}<=>{c.match(c.render(v))}")
    return " WHERE " + " AND ".join(parts) + " LIMIT 1"


def update_statement(plan: TablePlan, before: tuple, after: tuple) -> str:
    sets = ", ".join(f"{c.name}={v}" for c, v in values_of(plan.columns, after))
    return f"UPDATE {plan.qualified} SET {sets}{where_clause(plan, before)}"


def delete_statement(plan: TablePlan, image: tuple) -> str:
    return f"DELETE FROM {plan.qualified}{where_clause(plan, image)}"


class Batch:
    """Adjacent rows of one table and kind: one multi-row INSERT, or one DELETE ... IN (...), of at
    most `budget` characters unless its one row is longer (`fits`)."""

    def __init__(self, plan: TablePlan, kind: str, present: int, flags: int, position: str,
                 budget: int = MAX_STATEMENT_BYTES) -> None:
        self.plan, self.kind, self.present, self.flags = plan, kind, present, flags
        self.position = position          # of the first rows event in the batch
        self.budget = budget
        self.items: list[str] = []
        self.size = 0
        self.header = ""

    def accepts(self, plan: TablePlan, kind: str, present: int, flags: int) -> bool:
        return plan is self.plan and kind == self.kind and present == self.present and flags == self.flags

    def row(self, image: tuple) -> str:
        """The row's part of the statement: the values of an INSERT, the key of a DELETE."""
        if self.kind == R.WRITE:
            return "(" + ", ".join(v for _, v in values_of(self.plan.columns, image)) + ")"
        key = self.plan.key
        assert key is not None, "only a one-column primary key batches DELETEs"
        (c,) = key
        v = image[c.index]
        if v is R.ABSENT:
            raise UnsupportedError(f"{self.plan.qualified}: the before image lacks primary key column {c.name}")
        return "NULL" if v is None else c.render(v)

    def fits(self, row: str) -> bool:
        """Whether `row` may join the rows so far (a first row always may: packets.fit_packets
        refuses a statement the target cannot take)."""
        return not self.items or self.size + len(row) + 2 <= self.budget

    def add(self, image: tuple, row: str) -> None:
        """`row`: `self.row(image)`."""
        if not self.header:
            if self.kind == R.WRITE:
                names = ", ".join(c.name for c in self.plan.columns if image[c.index] is not R.ABSENT)
                self.header = f"INSERT INTO {self.plan.qualified} ({names}) VALUES "
            else:
                (c,) = self.plan.key or ()
                self.header = f"DELETE FROM {self.plan.qualified} WHERE {c.name} IN ("
        self.items.append(row)
        self.size += len(row) + 2

    def finish(self) -> list[RowStatement]:
        if not self.items:
            return []
        sql = self.header + ",".join(self.items) + ("" if self.kind == R.WRITE else ")")
        verb = "INSERT" if self.kind == R.WRITE else "DELETE"
        return [RowStatement(self.flags, sql, RowCheck(verb, self.plan.qualified, self.position, len(self.items)))]
