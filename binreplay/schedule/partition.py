"""Cutting batches again by table, so that two of them can be applied side by side.

The batcher (batches.py) cuts the source into contiguous batches. When the source interleaves
transactions on different tables (bulk loads into several tables, many small tables), two
consecutive batches nearly always share a table, so the scheduler applies them one after the
other although their transactions, taken table by table, do not touch each other: the target then
works on one core. `Partitioner` takes two consecutive plain batches and cuts their members again
into two sides whose tables are disjoint, each in source order, so that two workers can apply
them at once (measured on the bulk workload: the target's own apply time halves with two
clients split by table, benchmarks/floor.py).

What keeps it exact:
- tables are compared by their keys in keys.py's "table" mode: a table, or the group of tables
  foreign keys link (a cascade changes rows the binlog does not show), so two batches never touch
  the same table;
- each new batch records one `applied` range per run of its consecutive members, never a range
  holding a member of the other: after a crash a rerun finds exactly what each committed
  (state/records.AppliedRanges);
- the mark: only the pair's last batch covers source transactions (`covered`: all of the pair's,
  up to its end), the others none, so the mark (state/position.py) does not move when they are
  done and passes the pair only once all are applied (a side larger than a batch's limits is cut
  in batches in source order; their shared tables keep them in order);
- keys: each batch holds its tables exclusively (coarser than row keys, so still safe) and the
  key every keyed batch shares, so it is ordered against the batches before and after it as usual.

Only a pair whose keys conflict is cut (otherwise the scheduler already runs both at once, with
their finer row keys), and only plain batches: row changes to transactional tables, no barrier,
no span of temporary tables, no hold, no commit-order bound (--preserve-commit-order and --dependency
commit-order keep the source's order; the coordinator does not use a Partitioner then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from binreplay.model import Transaction
from binreplay.schedule.batches import Batch, FileRange
from binreplay.schedule.dependencies import EVERYTHING
from binreplay.schedule.limits import BatchLimits
from binreplay.schedule.scheduler import conflict

log = logging.getLogger(__name__)

# Cutting is tried for each pair; after this many pairs in a row that share their tables
# (OLTP-like traffic), batches are passed on at once for a while instead of being held back.
GIVE_UP_AFTER = 4
PAUSE_BATCHES = 32
# A cut whose smaller batch holds less than this share of the pair's bytes gains too little.
MIN_SHARE = 0.2


class Partitioner:
    """Between the batcher and the pool: `take` returns the batches ready to submit. It numbers every
    batch it passes on (`seq`) itself, since a pair may become more than two batches.

    `keys_of` gives a member's table keys (keys.table_keys), asked only when a pair is tried."""

    def __init__(self, limits: BatchLimits, keys_of: Callable[[Transaction], frozenset]) -> None:
        self.limits = limits
        self.keys_of = keys_of
        self._held: Batch | None = None
        self._held_keys: tuple[frozenset, ...] | None = None   # its members' table keys, if asked already
        self._failures = 0
        self._pause = 0
        self._seq = 0
        self.cut = 0                           # pairs cut (for the -v log and the tests)

    def take(self, batches: list[Batch]) -> list[Batch]:
        out: list[Batch] = []
        for b in batches:
            known: tuple[frozenset, ...] | None = None   # b's members' table keys, if a pair with b was tried
            held = self._held
            if held is not None:
                self._held = None
                cut = self._cut(held, b) if _plain(b) else None
                if isinstance(cut, list):
                    out.extend(self._numbered(cut))
                    continue
                known = cut
                out.extend(self._numbered([held]))
            if _plain(b) and self._pause == 0:
                self._held, self._held_keys = b, known
            else:
                self._pause = max(0, self._pause - 1)
                out.extend(self._numbered([b]))
        return out

    def flush(self) -> list[Batch]:
        """The batch held back for a pair, at the end of the input (or before waiting for more)."""
        held, self._held = self._held, None
        return self._numbered([held]) if held is not None else []

    def _numbered(self, batches: list[Batch]) -> list[Batch]:
        for b in batches:
            b.seq = self._seq
            self._seq += 1
        return batches

    def _cut(self, a: Batch, b: Batch) -> list[Batch] | tuple[frozenset, ...] | None:
        """The pair cut by table, or when it cannot be cut, the table keys of b's members (if asked)."""
        # Consecutive batches of the batcher (only events outside transactions may lie between them).
        if not (a.seq + 1 == b.seq and a.file_index == b.file_index and a.source_starts == b.source_starts):
            return None
        if not conflict(a.keys, b.keys):
            return None       # the scheduler runs them side by side already
        members = a.members + b.members
        # First by the tables' names, over the distinct sets of them (a few, on OLTP-like traffic): keys.py's
        # foreign-key groups only join more, so a pair that names cannot cut is not asked for its keys.
        by_names: dict[frozenset, int] = {}
        for m in members:
            by_names[m.tables] = by_names.get(m.tables, 0) + m.size
        by_names.pop(frozenset(), None)
        if _two_sides(list(by_names.values()), list(by_names)) is None:
            return self._failed(None)
        tables = [*(self._held_keys or [self.keys_of(m) for m in a.members]), *(self.keys_of(m) for m in b.members)]
        sides = _two_sides([m.size for m in members], tables)
        if sides is None:
            return self._failed(tuple(tables[len(a.members):]))   # b may be held next: not asked again
        self._failures = 0
        if not self.cut:
            log.info("cutting pairs of batches by table to apply them side by side, the first at %s", a.start)
        self.cut += 1
        chunks = _within_limits(members, sides, self.limits)
        owner = [0] * len(members)
        for n, chunk in enumerate(chunks):
            for j in chunk:
                owner[j] = n
        out = []
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            keys: dict = {key: True for j in chunk for key in tables[j]}
            keys[EVERYTHING] = False
            out.append(Batch(a.seq, a.file_index, a.file, members[chunk[0]].start_pos,
                             b.end_pos if last else members[chunk[-1]].end_pos,
                             members=[members[j] for j in chunk], covered=a.covered + b.covered if last else 0,
                             size=sum(members[j].size for j in chunk), keys=keys, source_starts=a.source_starts,
                             ranges=_runs(members, owner, n)))
        return out


    def _failed(self, known: tuple[frozenset, ...] | None) -> tuple[frozenset, ...] | None:
        self._failures += 1
        if self._failures >= GIVE_UP_AFTER:
            self._failures, self._pause = 0, PAUSE_BATCHES
        return known


def _within_limits(members: list, sides: list[int], limits: BatchLimits) -> list[list[int]]:
    """Each side's members (indexes) in batches within the limits, in source order (one side's batches
    share tables, so the scheduler keeps them in order); all in the order of their first members."""
    chunks: list[list[int]] = []
    for side in (0, 1):
        chunk: list[int] = []
        size = 0
        for j in (j for j, s in enumerate(sides) if s == side):
            if limits.full(len(chunk), size, members[j].size):
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(j)
            size += members[j].size
        chunks.append(chunk)
    return sorted(chunks, key=lambda c: c[0])


def _plain(b: Batch) -> bool:
    """Row changes to transactional tables only, nothing that must stay where it is in the source."""
    # (A member that is a barrier, non-transactional writes included, is a batch of its own, a barrier.)
    return (bool(b.members) and not b.barrier and not b.unit and not b.hold and b.after is None
            and b.temporary_from is None and b.temporary_open is None and not b.earlier_files and b.ranges is None)


def _two_sides(sizes: list[int], tables: list) -> list[int] | None:
    """Side 0 or 1 for each member (its bytes in `sizes`, its tables in `tables`), such that no table
    is on both sides; None when the tables form one group or the cut would be too uneven to pay."""
    parent: dict = {}

    def find(k):
        while parent[k] is not k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for keys in tables:
        root = None
        for k in keys:
            parent.setdefault(k, k)
            r = find(k)
            if root is None:
                root = r
            elif r is not root:
                parent[r] = root
    groups: dict = {}            # root -> [bytes, member indexes]
    loose: list[int] = []        # members without tables (emptied by the filters): either side
    for j, keys in enumerate(tables):
        if not keys:
            loose.append(j)
            continue
        g = groups.setdefault(find(next(iter(keys))), [0, []])
        g[0] += sizes[j]
        g[1].append(j)
    if len(groups) < 2:
        return None
    load = [0, 0]
    sides = [0] * len(sizes)
    for size, indexes in sorted(groups.values(), key=lambda g: -g[0]):
        side = 0 if load[0] <= load[1] else 1
        load[side] += size
        for j in indexes:
            sides[j] = side
    for j in loose:
        sides[j] = sides[j - 1] if j else 0
    if min(load) < MIN_SHARE * (load[0] + load[1]):
        return None
    return sides


def _runs(members: list, owner: list[int], mine: int) -> list[FileRange]:
    """One range per run of consecutive members of batch `mine` (a member of another ends a run)."""
    out: list[FileRange] = []
    run: list = []
    for m, o in zip(members, owner):
        if o == mine:
            run.append(m)
        elif run:
            out.append(_range(run))
            run = []
    if run:
        out.append(_range(run))
    return out


def _range(run: list) -> FileRange:
    first, last = run[0], run[-1]
    return FileRange(first.file_index, first.file, first.start_pos, last.end_pos, len(run), last.gtid)
