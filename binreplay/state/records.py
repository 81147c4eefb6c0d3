"""What the target's progress records say, as values: the ranges applied above the mark, the state a
run resumes from, what a replay does with the latest run, how far a run got, a DDL started and not
recorded as done. `state/store.py` reads and writes them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from binreplay.binlog.names import binlog_sort_key
from binreplay.model import BinlogPosition, Transaction


class AppliedRanges:
    """The ranges of source transactions the `applied` table records (each one target commit).

    Ranges of different runs may overlap (a resumed run's batch spans what an earlier run applied
    above the mark), so a transaction is covered when any range with a start at or before its own
    reaches to its end: the largest end among those ranges decides."""

    def __init__(self, rows: list[tuple[int, int, int, int]] = ()) -> None:   # type: ignore[assignment]
        by_file: dict[int, list[tuple[int, int]]] = {}
        self.transactions = 0
        for file_index, start, end, count in rows:
            by_file.setdefault(int(file_index), []).append((int(start), int(end)))
            self.transactions += int(count)
        self._starts: dict[int, list[int]] = {}
        self._reach: dict[int, list[int]] = {}     # the largest end of the ranges up to each one
        for file_index, ranges in by_file.items():
            ranges.sort()
            reach, top = [], 0
            for _start, end in ranges:
                top = max(top, end)
                reach.append(top)
            self._starts[file_index] = [start for start, _end in ranges]
            self._reach[file_index] = reach

    def __bool__(self) -> bool:
        return bool(self._starts)

    def furthest(self) -> tuple[int, int] | None:
        """(file index, end) of the furthest recorded range, None when there is none."""
        if not self._reach:
            return None
        file_index = max(self._reach)
        return file_index, self._reach[file_index][-1]

    def covers(self, trx: Transaction) -> bool:
        """Whether a recorded range holds this transaction (it was applied by an earlier run)."""
        starts = self._starts.get(trx.file_index)
        if not starts:
            return False
        i = bisect.bisect_right(starts, trx.start_pos) - 1
        return i >= 0 and self._reach[trx.file_index][i] >= trx.end_pos


@dataclass
class ResumeState:
    run_id: int
    resumed: bool
    low_water: BinlogPosition | None                  # None: nothing applied yet, start at the run's start
    applied_above: AppliedRanges = field(default_factory=AppliedRanges)
    transactions_before: int = 0
    replaced: str | None = None          # the earlier run this one replaced (abandoned), said to the user


@dataclass(frozen=True)
class RunDecision:
    """What a replay does with the target's latest run: resume it, or abandon it (`replaced` says
    so to the user) and begin a new one; neither when there is none."""
    resume: int | None = None
    abandon: int | None = None
    replaced: str | None = None


@dataclass(frozen=True)
class RunProgress:
    """How far a run's records say it applied: the furthest end among its mark, `applied` and
    `ddl_journal` rows, by binlog name (comparable across runs, unlike file_index)."""
    binlog_file: str
    pos: int

    def __str__(self) -> str:
        return f"{self.binlog_file}:{self.pos}"

    def past(self, start: tuple[str, int]) -> bool:
        """Beyond `start` (binlog name, position); another sequence's name counts as beyond."""
        mine, theirs = binlog_sort_key(self.binlog_file), binlog_sort_key(start[0])
        return mine[0] != theirs[0] or (mine[1], self.pos) > (theirs[1], start[1])


@dataclass
class DdlIntent:
    """A statement that commits implicitly, started and not recorded as done."""

    file_index: int
    end_pos: int
    schema_before: str                # schema_fingerprint() before it ran
    connection_id: int | None         # the target session that ran it (None: an older binreplay's entry)
    statement: bytes = b""            # what that session was sent (its process list entry shows it)
    # The digest parts that session could not read (catalog.unreadable_parts, comma-joined; None: an
    # older binreplay's entry, which did not say).
    unreadable: str | None = None
