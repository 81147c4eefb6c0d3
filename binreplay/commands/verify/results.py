"""What `binreplay verify` is asked to compare, and what it finds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from binreplay.server.connection import ServerConfig

Key = tuple[Any, ...]


@dataclass(frozen=True)
class VerifyOptions:
    target: ServerConfig
    reference: ServerConfig
    databases: tuple[str, ...] = ()      # empty: every user database on either server
    chunk_size: int = 10_000
    threads: int = 4
    progress_schema: str = "binreplay"
    narrow_to: int = 100                 # bisect a differing chunk until it holds at most this many rows
    max_ranges: int = 10                 # differing key ranges reported per table
    progress: bool = True                # tqdm bar on stderr (shown on a terminal only)


@dataclass
class KeyRange:
    """Rows whose key is > `after` and <= `upto` (None: unbounded) differ between the servers."""
    after: Key | None
    upto: Key | None
    reference_rows: int
    target_rows: int
    first: Key | None = None             # smallest key present in the range (either server)
    last: Key | None = None              # largest key present in the range (either server)


@dataclass
class TableResult:
    schema: str
    table: str
    key: list[str] = field(default_factory=list)
    reference_rows: int | None = None
    target_rows: int | None = None
    problems: list[str] = field(default_factory=list)
    ranges: list[KeyRange] = field(default_factory=list)
    more_ranges: bool = False            # the report stopped at max_ranges

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}" if self.table else self.schema

    @property
    def differs(self) -> bool:
        return bool(self.problems or self.ranges)


@dataclass
class VerifyReport:
    databases: list[str]
    tables: list[TableResult]
    elapsed_s: float = 0.0

    @property
    def differences(self) -> list[TableResult]:
        return [t for t in self.tables if t.differs]

    @property
    def rows(self) -> int:
        return sum(t.reference_rows or 0 for t in self.tables)
