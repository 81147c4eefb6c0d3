"""Pairs of batches cut again by table (schedule/partition.py): which cuts are made, and that what
they record lets a crash after any of their commits resume exactly."""

from __future__ import annotations

import itertools
import random

import pytest

from binreplay.model import BinlogPosition, FormatDescription, Transaction, TrxKind
from binreplay.schedule import partition
from binreplay.schedule.batches import Batch, Batcher
from binreplay.schedule.dependencies import EVERYTHING
from binreplay.schedule.limits import BatchLimits
from binreplay.schedule.partition import Partitioner
from binreplay.schedule.scheduler import Scheduler
from binreplay.state.position import PositionTracker
from binreplay.state.records import AppliedRanges

FDE = FormatDescription(4, "10.11.19-MariaDB", 0, 19, b"", 1, b"")


def trx(seq: int, size: int = 100, kind: TrxKind = TrxKind.ROWS, start: int | None = None) -> Transaction:
    start = 1000 + seq * size if start is None else start
    return Transaction(seq=seq, file_index=0, file="bin.000001", start_pos=start, end_pos=start + size,
                       timestamp=0, kind=kind, fde=FDE)


def table_keys(tables: str) -> frozenset:
    """'ab' -> the table keys of tables a and b; a table written in capitals stands for its FK group."""
    return frozenset(("grp", t.lower()) if t.isupper() else ("tbl", "s", t) for t in tables)


def run(limits: BatchLimits, plan: list[str], sizes: list[int] | None = None,
        gaps: list[int] | None = None) -> tuple[list[Batch], list[Transaction], Partitioner]:
    """`plan`: per transaction, its tables ('-' before them: not applied, it rides along; '!': a
    barrier); `gaps`: bytes of events outside transactions before each. Returns the batches
    submitted, the transactions, and the partitioner."""
    tables: dict[int, frozenset] = {}
    asked: list[int] = []

    def keys_of(t: Transaction) -> frozenset:
        asked.append(t.seq)
        return tables[t.seq]

    batcher, parts = Batcher(limits), Partitioner(limits, keys_of)
    parts.asked = asked   # type: ignore[attr-defined]  # for the tests: whose keys were asked
    out: list[Batch] = []
    trxs = []
    pos = 1000
    for i, what in enumerate(plan):
        pos += gaps[i] if gaps else 0
        size = (sizes or [100] * len(plan))[i]
        t = trx(i, size, TrxKind.DDL if what == "!" else TrxKind.ROWS, start=pos)
        pos += size
        trxs.append(t)
        apply = not what.startswith("-")
        tables[i] = table_keys(what.lstrip("-"))
        out += parts.take(batcher.add(t, apply=apply))
    out += parts.take(batcher.flush()) + parts.flush()
    return out, trxs, parts


def shape(batches: list[Batch]) -> list[str]:
    return [" ".join(str(m.seq) for m in b.members) for b in batches]


CASES = {
    # two batches of 3; tables a and b alternate: cut into one batch per table
    "two tables interleaved": (BatchLimits(3), ["a", "b", "a", "b", "a", "b"], ["0 2 4", "1 3 5"]),
    # one transaction links a and b: nothing to cut
    "a link makes one group": (BatchLimits(3), ["a", "b", "ab", "b", "a", "b"], ["0 1 2", "3 4 5"]),
    # foreign-key groups stand for their tables
    "a group is one side": (BatchLimits(3), ["A", "b", "A", "b", "A", "b"], ["0 2 4", "1 3 5"]),
    # a side larger than a batch is cut in batches, in source order
    "a side over the limit": (BatchLimits(3), ["a", "a", "b", "a", "a", "b"], ["0 1 3", "2 5", "4"]),
    # an uneven cut (the smaller side under a fifth of the bytes) is not worth it
    "too uneven": (BatchLimits(5), ["a"] * 9 + ["b"], ["0 1 2 3 4", "5 6 7 8 9"]),
    # riders (not applied) belong to no side
    "riders": (BatchLimits(2), ["a", "-a", "b", "a", "-b", "b"], ["0 3", "2 5"]),
    # a barrier is never cut, and ends the pair before it
    "barrier": (BatchLimits(2), ["a", "b", "!", "a", "b", "a", "b"], ["0 1", "2", "3 5", "4 6"]),
    # members without tables (emptied by the filters) join the side of the member before them
    "empty members": (BatchLimits(3), ["a", "", "b", "a", "b", "b"], ["0 1 3", "2 4 5"]),
}


@pytest.mark.parametrize("name", CASES)
def test_cuts(name: str) -> None:
    limits, plan, expected = CASES[name]
    batches, _trxs, _parts = run(limits, plan)
    assert shape(batches) == expected
    assert [b.seq for b in batches] == list(range(len(batches)))


def test_sides_hold_their_tables_exclusively_and_share_the_keyed_mark() -> None:
    batches, _trxs, _parts = run(BatchLimits(3), ["a", "b", "a", "b", "a", "b"])
    assert [b.keys for b in batches] == [{("tbl", "s", "a"): True, EVERYTHING: False},
                                         {("tbl", "s", "b"): True, EVERYTHING: False}]
    # ... so that two workers may claim them at once.
    s = Scheduler()
    for b in batches:
        s.add(b.seq, b.keys, size=b.size)
    assert s.claim() == [0] and s.claim() == [1]


def test_pairs_that_cannot_be_cut_stop_being_held_back() -> None:
    limits = BatchLimits(2)
    plan = ["ab"] * 2 * (partition.GIVE_UP_AFTER + 1) * 2
    batches, _trxs, parts = run(limits, plan)
    assert parts.cut == 0 and len(batches) == len(plan) // 2
    # Four pairs were tried (each member's keys asked once), then the batches after them passed on at once.
    assert sorted(parts.asked) == list(range(2 * (partition.GIVE_UP_AFTER + 1)))


def _check_exact(batches: list[Batch], trxs: list[Transaction], applied: set[int]) -> None:
    """Whatever subset of the batches commits, the records say exactly which transactions are
    applied, and the mark never passes one that is not."""
    by_seq = {t.seq: t for t in trxs}
    assert sorted(m.seq for b in batches for m in b.members) == sorted(applied), "each applied exactly once"
    for b in batches:
        starts = [m.start_pos for m in b.members]
        assert starts == sorted(starts), "a batch applies its members in source order"
    # Two batches that share a table apply it in source order (the scheduler keeps their seq order).
    for x, y in itertools.combinations(batches, 2):
        shared = {k for k, ex in x.keys.items() if ex} & {k for k, ex in y.keys.items() if ex}
        if shared:
            assert max(m.end_pos for m in x.members) <= min(m.start_pos for m in y.members)
    for n in range(len(batches) + 1):
        for done in itertools.combinations(batches, n):
            rows = [(r.file_index, r.start_pos, r.end_pos, r.transactions) for b in done for r in b.records()]
            ranges = AppliedRanges(rows)
            committed = {m.seq for b in done for m in b.members}
            for seq in applied:
                assert ranges.covers(by_seq[seq]) == (seq in committed), (shape(list(done)), seq)
            tracker = PositionTracker(BinlogPosition(0, "bin.000001", trxs[0].start_pos))
            for b in batches:
                tracker.add(b.seq, b.end, b.covered, done=False)
            for b in done:
                tracker.done(b.seq)
            mark, count = tracker.mark()
            assert mark is not None
            pending = [by_seq[s] for s in applied - committed]
            assert all(mark.pos <= t.start_pos for t in pending), "the mark passed a transaction not applied"
            if not pending:
                assert mark.pos == trxs[-1].end_pos and count == len(trxs)


@pytest.mark.parametrize("seed", range(40))
def test_any_crash_between_the_commits_resumes_exactly(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.randint(4, 14)
    tables = "abcdE"[:rnd.randint(2, 5)]
    plan = []
    for _ in range(n):
        what = "".join(rnd.sample(tables, 1 if rnd.random() < 0.85 else 2))
        plan.append(("-" if rnd.random() < 0.15 else "") + what)
    sizes = [rnd.randint(50, 400) for _ in range(n)]
    limits = BatchLimits(rnd.randint(2, 5), rnd.choice([300, 600, 1 << 20]))
    gaps = [rnd.choice([0, 0, 0, 30]) for _ in range(n)]   # e.g. a BINLOG_CHECKPOINT between two
    batches, trxs, _parts = run(limits, plan, sizes, gaps)
    applied = {i for i, what in enumerate(plan) if not what.startswith("-")}
    for b in batches:
        assert len(b.members) <= limits.max_transactions
        assert b.size <= limits.max_bytes or len(b.members) == 1
    _check_exact(batches, trxs, applied)


def test_the_cases_are_exact_too() -> None:
    for limits, plan, _expected in CASES.values():
        batches, trxs, _parts = run(limits, plan)
        barriers = {i for i, what in enumerate(plan) if what == "!"}
        if barriers:
            continue   # (a barrier's own record is the batcher's, checked in test_batches.py)
        _check_exact(batches, trxs, {i for i, what in enumerate(plan) if not what.startswith("-")})
