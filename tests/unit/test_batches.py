"""Cutting the source into batches (one target commit each), the low-water mark over them, and the
ranges a resumed run reads back from the progress table."""

from __future__ import annotations

import pytest

from binreplay.model import BinlogPosition, FormatDescription, Transaction, TrxKind
from binreplay.schedule.batches import Batcher
from binreplay.schedule.limits import BatchLimits
from binreplay.state.position import PositionTracker
from binreplay.state.records import AppliedRanges

FDE = FormatDescription(4, "10.11.19-MariaDB", 0, 19, b"", 1, b"")


def trx(seq: int, *, kind: TrxKind = TrxKind.ROWS, file_index: int = 0, size: int = 100) -> Transaction:
    start = 1000 + seq * size
    return Transaction(seq=seq, file_index=file_index, file=f"bin.{file_index + 1:06d}", start_pos=start,
                       end_pos=start + size, timestamp=0, kind=kind, fde=FDE)


def cut(limits: BatchLimits, plan: list[tuple[Transaction, str]]) -> list[list[str]]:
    """`plan`: transactions with 'apply', 'skip' (rides along) or 'hold'; returns each batch as
    its members' seqs, with skipped ones in brackets."""
    b = Batcher(limits)
    batches = []
    for t, what in plan:
        batches += b.add(t, apply=what == "apply", hold=what == "hold")
    batches += b.flush()
    out = []
    for batch in batches:
        members = {m.seq for m in batch.members}
        first = next(i for i, (t, _w) in enumerate(plan) if t.start_pos == batch.start_pos
                     and t.file_index == batch.file_index)
        covered = [t for t, _w in plan[first:first + batch.covered]]
        out.append([str(t.seq) if t.seq in members else f"[{t.seq}]" for t in covered])
    return out


CASES = {
    "full batches": (BatchLimits(3), ["apply"] * 7, [["0", "1", "2"], ["3", "4", "5"], ["6"]]),
    "skipped ride along": (BatchLimits(2), ["apply", "skip", "apply", "apply"], [["0", "[1]", "2"], ["3"]]),
    "held stands alone": (BatchLimits(5), ["apply", "hold", "apply"], [["0"], ["[1]"], ["2"]]),
}


@pytest.mark.parametrize("name", CASES)
def test_batches(name: str) -> None:
    limits, whats, expected = CASES[name]
    assert cut(limits, [(trx(i), w) for i, w in enumerate(whats)]) == expected


def test_a_barrier_is_a_batch_of_its_own() -> None:
    plan = [(trx(0), "apply"), (trx(1, kind=TrxKind.DDL), "apply"), (trx(2), "apply")]
    assert cut(BatchLimits(10), plan) == [["0"], ["1"], ["2"]]


def test_a_batch_never_spans_two_files() -> None:
    plan = [(trx(0), "apply"), (trx(1, file_index=1), "apply")]
    assert cut(BatchLimits(10), plan) == [["0"], ["1"]]


def test_bytes_bound_a_batch() -> None:
    assert cut(BatchLimits(10, max_bytes=250), [(trx(i), "apply") for i in range(5)]) == [["0", "1"], ["2", "3"], ["4"]]


def test_the_record_of_a_batch_ends_at_its_last_member() -> None:
    # Transactions riding along after the last member may end where an earlier run's record ends.
    b = Batcher(BatchLimits(10))
    for t, apply in [(trx(0), True), (trx(1), False)]:
        assert b.add(t, apply=apply) == []
    (batch,) = b.flush()
    assert batch.end_pos == trx(1).end_pos and batch.record_end == trx(0).end_pos


def test_the_mark_passes_only_finished_batches_in_order() -> None:
    pos = [BinlogPosition(0, "bin.000001", p) for p in (100, 200, 300)]
    t = PositionTracker(None)
    t.add(0, pos[0], 2, done=False)
    t.add(1, pos[1], 1, done=True)
    t.add(2, pos[2], 4, done=False, hold=True)
    assert t.mark() == (None, 0)
    t.done(0)
    assert t.mark() == (pos[1], 3)
    t.add(3, BinlogPosition(0, "bin.000001", 400), 1, done=True)
    assert t.mark() == (pos[1], 3)   # held: a later run may still apply it, the mark never passes it


def test_applied_ranges_cover_what_an_earlier_run_committed() -> None:
    # Rows: (file index, start, end, transactions); a resumed run's range may overlap an older one.
    ranges = AppliedRanges([(0, 1000, 1300, 3), (0, 1100, 1200, 1), (1, 1000, 1100, 1)])
    assert ranges.transactions == 5
    assert ranges.covers(trx(0)) and ranges.covers(trx(2))
    assert not ranges.covers(trx(3))
    assert ranges.covers(trx(0, file_index=1)) and not ranges.covers(trx(1, file_index=1))
    assert not AppliedRanges() and not AppliedRanges().covers(trx(0))


def test_an_unkeyed_batch_runs_after_everything_before_it_and_before_everything_after() -> None:
    # Keys are skipped when the workers wait for the coordinator (run/coordinator.py): such a batch
    # holds EVERYTHING exclusively, keyed ones hold it shared, so only keyed ones overlap each other.
    from binreplay.schedule.dependencies import EVERYTHING, UNKEYED
    from binreplay.schedule.scheduler import Scheduler

    s = Scheduler()
    s.add(0, {("row", 1): True, EVERYTHING: False})
    s.add(1, {("row", 2): True, EVERYTHING: False})
    s.add(2, dict(UNKEYED))
    s.add(3, {("row", 3): True, EVERYTHING: False})
    assert s.claim() == [0] and s.claim() == [1]      # disjoint keys: side by side
    assert s.claim() == []                             # the unkeyed one waits for both
    s.finish([0, 1])
    assert s.claim() == [2] and s.claim() == []        # and the next keyed one waits for it
    s.finish([2])
    assert s.claim() == [3]
