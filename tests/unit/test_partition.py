"""Pairs of batches cut again by table (schedule/partition.py): which cuts are made, that the
scheduler then never lets two conflicting transactions run out of source order, and that what the
batches record lets a crash after any of their commits resume exactly."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from binreplay.apply.batch_parts import one_at_a_time
from binreplay.model import BinlogPosition, FormatDescription, Transaction, TrxKind
from binreplay.schedule import partition
from binreplay.schedule.batches import Batch, Batcher
from binreplay.schedule.dependencies import EVERYTHING, UNKEYED
from binreplay.schedule.limits import BatchLimits
from binreplay.schedule.partition import Partitioner
from binreplay.schedule.scheduler import KeySet, Scheduler
from binreplay.state.position import PositionTracker
from binreplay.state.records import AppliedRanges

FDE = FormatDescription(4, "10.11.19-MariaDB", 0, 19, b"", 1, b"")


def trx(seq: int, size: int = 100, kind: TrxKind = TrxKind.ROWS, start: int | None = None) -> Transaction:
    start = 1000 + seq * size if start is None else start
    return Transaction(seq=seq, file_index=0, file="bin.000001", start_pos=start, end_pos=start + size,
                       timestamp=0, kind=kind, fde=FDE)


def _table_key(t: str) -> tuple:
    return ("grp", "fk") if t.isupper() else ("tbl", "s", t)    # capitals: tables of one foreign-key group


def keys(what: str) -> tuple[KeySet, frozenset]:
    """A transaction written as the tables it writes, each optionally with the row it writes: 'a'
    writes table a, keyed by the whole table (as a bulk transaction is), 'a1' row 1 of table a
    (row keys, as keys.py gives them), 'A' a table of the one foreign-key group; '*ab' is not keyed (the
    coordinator had no time: it conflicts with everything). Returns (its scheduler keys, its table keys)."""
    unkeyed = what.startswith("*")
    found: KeySet = {}
    tables = set()
    for table, row in re.findall(r"([A-Za-z])(\d*)", what):
        key = _table_key(table)
        tables.add(key)
        if row and not table.isupper():
            found.setdefault(key, False)
            found[("row", table, row)] = True
        else:
            found[key] = True
    if unkeyed:
        return dict(UNKEYED), frozenset(tables)
    if found:
        found[EVERYTHING] = False
    return found, frozenset(tables)


def run(limits: BatchLimits, plan: list[str], sizes: list[int] | None = None,
        gaps: list[int] | None = None) -> tuple[list[Batch], list[Transaction], Partitioner]:
    """`plan`: per transaction, what it writes (see `keys`; '-' in front: not applied, it rides
    along; '!': a barrier); `gaps`: bytes of events outside transactions before each. Returns the
    batches submitted, the transactions, and the partitioner (`asked`: whose table keys it asked)."""
    tables: dict[int, frozenset] = {}
    asked: list[int] = []

    def keys_of(t: Transaction) -> frozenset:
        asked.append(t.seq)
        return tables[t.seq]

    batcher, parts = Batcher(limits), Partitioner(limits, keys_of)
    parts.asked = asked   # type: ignore[attr-defined]
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
        scheduler_keys, tables[i] = keys(what.lstrip("-"))
        t.tables = frozenset(("s", name) for name, _row in re.findall(r"([A-Za-z])(\d*)", what))   # its names
        out += parts.take(batcher.add(t, apply=apply, keys=scheduler_keys if apply and what != "!" else None))
    out += parts.take(batcher.flush()) + parts.flush()
    return out, trxs, parts


def shape(batches: list[Batch]) -> list[str]:
    return [" ".join(str(m.seq) for m in b.members) for b in batches]


CASES = {
    # two batches of 3; whole tables a and b alternate: cut into one batch per table
    "two tables interleaved": (BatchLimits(3), ["a", "b", "a", "b", "a", "b"], ["0 2 4", "1 3 5"]),
    # one transaction links a and b: nothing to cut
    "a link makes one group": (BatchLimits(3), ["a", "b", "ab", "b", "a", "b"], ["0 1 2", "3 4 5"]),
    # foreign-key groups stand for their tables
    "a group is one side": (BatchLimits(3), ["A", "b", "B", "b", "A", "b"], ["0 2 4", "1 3 5"]),
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
    # row keys that do not conflict: the scheduler runs the pair side by side already, uncut
    "rows apart": (BatchLimits(3), ["a1", "b1", "a2", "b2", "a3", "b3"], ["0 1 2", "3 4 5"]),
    # row keys that conflict (a1 twice): cut by table
    "rows in conflict": (BatchLimits(3), ["a1", "b1", "a2", "b2", "a1", "b3"], ["0 2 4", "1 3 5"]),
    # a batch not keyed conflicts with everything: cut by the tables its members write
    "not keyed": (BatchLimits(3), ["*a", "*b", "*a", "*b", "*a", "*b"], ["0 2 4", "1 3 5"]),
}


@pytest.mark.parametrize("name", CASES)
def test_cuts(name: str) -> None:
    limits, plan, expected = CASES[name]
    batches, trxs, _parts = run(limits, plan)
    assert shape(batches) == expected
    assert [b.seq for b in batches] == list(range(len(batches)))
    _check_exact(batches, trxs, plan)


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
    parts = Partitioner(limits, lambda t: frozenset({("tbl", "s", "a"), ("tbl", "s", "b")}))
    batcher = Batcher(limits)
    held = []        # after each batch closed: is one held back?
    for i, what in enumerate(plan):
        closed = batcher.add(trx(i), apply=True, keys=keys(what)[0])
        if closed:
            parts.take(closed)
            held.append(parts._held is not None)
    assert parts.cut == 0
    # The first batches wait for the next to try the pair; after GIVE_UP_AFTER pairs that could not
    # be cut, batches are passed on at once.
    assert held[:partition.GIVE_UP_AFTER] == [True] * partition.GIVE_UP_AFTER
    assert not any(held[partition.GIVE_UP_AFTER:])


def test_pairs_whose_table_names_cannot_be_cut_are_not_asked_for_keys() -> None:
    _batches, _trxs, parts = run(BatchLimits(2), ["a", "ab", "b", "ab"])       # one group
    assert parts.cut == 0 and parts.asked == []
    _batches, _trxs, parts = run(BatchLimits(5), ["a"] * 9 + ["b"])           # too uneven
    assert parts.cut == 0 and parts.asked == []


def test_each_member_s_table_keys_are_asked_once() -> None:
    # Tables apart by name, joined by a foreign key: the keys are asked, and the pair is not cut.
    _batches, _trxs, parts = run(BatchLimits(2), ["A", "B"] * (partition.GIVE_UP_AFTER + 1) * 2)
    assert parts.cut == 0
    assert sorted(parts.asked) == list(range(2 * (partition.GIVE_UP_AFTER + 1)))


def test_a_cut_batch_applied_one_at_a_time_records_each_member_alone() -> None:
    """The corrupt-event path (apply/batch_parts.py): members of the other side lie between its own."""
    batches, trxs, _parts = run(BatchLimits(3), ["a", "b", "a", "b", "a", "b"])
    side = batches[0]
    parts = one_at_a_time(side)
    assert [(p.start_pos, p.record_end) for p in parts] == [(trxs[i].start_pos, trxs[i].end_pos) for i in (0, 2, 4)]
    assert all(p.ranges is None and len(p.records()) == 1 for p in parts)
    # Only the first two were applied: those two are covered, nothing of the other side.
    ranges = AppliedRanges([(r.file_index, r.start_pos, r.end_pos, r.transactions)
                            for p in parts[:2] for r in p.records()])
    assert [ranges.covers(t) for t in trxs] == [True, False, True, False, False, False]


def _conflict(x: KeySet, y: KeySet) -> bool:
    return any(k in y and (ex or y[k]) for k, ex in x.items())


def _check_exact(batches: list[Batch], trxs: list[Transaction], plan: list[str], seed: int = 0) -> None:
    """Every applied transaction is in exactly one batch, in source order; however workers claim what
    the scheduler lets them, two conflicting transactions are applied in source order; and whatever
    subset of the batches commits, the records say exactly which transactions are applied and the
    mark never passes one that is not."""
    applied = {i for i, what in enumerate(plan) if not what.startswith("-")}
    by_seq = {t.seq: t for t in trxs}
    # What each really conflicts with: its rows or tables (one the coordinator did not key still
    # writes only its tables); a barrier, everything.
    own = {i: keys(plan[i].lstrip("-*"))[0] if plan[i] != "!" else {EVERYTHING: True} for i in applied}
    assert sorted(m.seq for b in batches for m in b.members) == sorted(applied), "each applied exactly once"
    for b in batches:
        starts = [m.start_pos for m in b.members]
        assert starts == sorted(starts), "a batch applies its members in source order"
    # Random claims and finishes by the real scheduler: a batch starts only when every batch holding a
    # transaction that conflicts with one of its members and comes before it has finished.
    rnd = random.Random(seed)
    s = Scheduler()
    for b in batches:
        s.add(b.seq, b.keys, barrier=b.barrier, size=b.size)
    batch_of = {m.seq: b.seq for b in batches for m in b.members}
    finished: set[int] = set()
    running: list[int] = []
    while len(finished) < len(batches):
        claimed = s.claim() if not running or rnd.random() < 0.6 else []
        if claimed:
            mine = next(b for b in batches if b.seq == claimed[0])
            for m in mine.members:
                for earlier in applied:
                    if earlier < m.seq and batch_of[earlier] != mine.seq and _conflict(own[earlier], own[m.seq]):
                        assert batch_of[earlier] in finished, f"{m.seq} started before {earlier} finished"
            running.append(claimed[0])
            continue
        assert running, "the scheduler stalled"
        done = running.pop(rnd.randrange(len(running)))
        s.finish([done])
        finished.add(done)
    for n in range(len(batches) + 1):
        for done_batches in itertools.combinations(batches, n):
            rows = [(r.file_index, r.start_pos, r.end_pos, r.transactions) for b in done_batches for r in b.records()]
            ranges = AppliedRanges(rows)
            committed = {m.seq for b in done_batches for m in b.members}
            for seq in applied:
                assert ranges.covers(by_seq[seq]) == (seq in committed), (shape(list(done_batches)), seq)
            tracker = PositionTracker(BinlogPosition(0, "bin.000001", trxs[0].start_pos))
            for b in batches:
                tracker.add(b.seq, b.end, b.covered, done=not b.members)
            for b in done_batches:
                tracker.done(b.seq)
            mark, count = tracker.mark()
            assert mark is not None
            pending = [by_seq[s] for s in applied - committed]
            assert all(mark.pos <= t.start_pos for t in pending), "the mark passed a transaction not applied"
            # The mark is always where a transaction ends (or where the run began).
            assert mark.pos == trxs[0].start_pos or any(t.end_pos == mark.pos for t in trxs)
            if not pending:
                assert mark.pos == trxs[-1].end_pos and count == len(trxs)


@pytest.mark.parametrize("seed", range(60))
def test_any_crash_between_the_commits_resumes_exactly(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.randint(4, 14)
    tables = "abcdE"[:rnd.randint(2, 5)]
    plan = []
    for _ in range(n):
        written = rnd.sample(tables, 1 if rnd.random() < 0.85 else 2)
        rows = rnd.random() < 0.5           # row-keyed, else the whole table (a bulk transaction)
        what = "".join(t + (str(rnd.randint(1, 3)) if rows and t.islower() else "") for t in written)
        if rnd.random() < 0.1:
            what = "*" + what               # not keyed
        plan.append(("-" if rnd.random() < 0.15 else "") + what)
    sizes = [rnd.randint(50, 400) for _ in range(n)]
    limits = BatchLimits(rnd.randint(2, 5), rnd.choice([300, 600, 1 << 20]))
    gaps = [rnd.choice([0, 0, 0, 30]) for _ in range(n)]   # e.g. a BINLOG_CHECKPOINT between two
    batches, trxs, _parts = run(limits, plan, sizes, gaps)
    for b in batches:
        assert len(b.members) <= limits.max_transactions
        assert b.size <= limits.max_bytes or len(b.members) == 1
    _check_exact(batches, trxs, plan, seed)


def test_the_random_plans_cut_pairs() -> None:
    """(The random plans above are worth their name: most of them cut pairs, often into several ranges.)"""
    cut = multi = 0
    for seed in range(60):
        rnd = random.Random(seed)
        n = rnd.randint(4, 14)
        tables = "abcdE"[:rnd.randint(2, 5)]
        plan = ["".join(rnd.sample(tables, 1)) for _ in range(n)]
        batches, _trxs, parts = run(BatchLimits(rnd.randint(2, 5)), plan)
        cut += parts.cut > 0
        multi += any(len(b.ranges or []) > 1 for b in batches)
    assert cut > 30 and multi > 15, (cut, multi)
