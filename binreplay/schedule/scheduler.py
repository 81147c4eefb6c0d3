"""Scheduling: which transactions may be applied now, and which may share a target commit.

Pure logic, no I/O. Transactions are added in source order with their conflict keys
(see keys.py). A transaction depends on every earlier, unfinished transaction that holds
one of its keys in a conflicting mode (exclusive vs anything, shared vs exclusive). Edges
only point backwards, so the dependency graph has no cycles and the scheduler can never
deadlock, however transactions are claimed.

A worker claims a *group*: transactions whose dependencies are all finished or inside the
same group. The group is applied in source order in one target transaction, so a chain
of transactions on a hot row still travels in large commits instead of one by one.

Two more kinds of ordering:
- a barrier (DDL, statements, anything that cannot be keyed) depends on every earlier
  transaction and every later one depends on it: it runs alone;
- `after=N` (commit-order mode): the transaction may start once every transaction with
  a smaller sequence number than N is finished (or in the same group).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

Key = Hashable
KeySet = dict  # Key -> exclusive (bool)


def conflict(a: KeySet, b: KeySet) -> bool:
    """Whether the scheduler orders two transactions (or batches) holding these keys: a key both hold,
    exclusively in one of them at least."""
    if len(b) < len(a):
        a, b = b, a
    return any((other := b.get(key)) is not None and (exclusive or other) for key, exclusive in a.items())


@dataclass
class _Node:
    seq: int
    deps: set[int]                    # unfinished earlier transactions this one waits for
    keys: tuple[tuple[Key, bool], ...]
    barrier: bool
    after: int | None
    size: int
    dependents: list[int] = field(default_factory=list)


class Scheduler:
    def __init__(self) -> None:
        self._nodes: dict[int, _Node] = {}       # unfinished, in seq order (dicts keep insertion order)
        self._pending: dict[int, None] = {}      # unfinished and unclaimed, in seq order
        self._last_exclusive: dict[Key, int] = {}
        self._shared_since: dict[Key, set[int]] = {}
        self._last_barrier: int | None = None
        self._last_seq = -1
        self._next_low = 0                       # every seq below it is finished
        self._barriers_pending = 0

    # -- adding ------------------------------------------------------------------

    def add(self, seq: int, keys: KeySet | None = None, *, barrier: bool = False, after: int | None = None,
            size: int = 0) -> None:
        if seq <= self._last_seq:
            raise ValueError(f"transactions must be added in order ({seq} after {self._last_seq})")
        if not self._nodes and self._last_seq == -1:
            self._next_low = seq
        self._last_seq = seq
        deps: set[int] = set()
        if barrier:
            deps.update(self._nodes)
            self._last_barrier = seq
        elif self._last_barrier is not None and self._last_barrier in self._nodes:
            deps.add(self._last_barrier)
        items = tuple((keys or {}).items())
        for key, exclusive in items:
            last = self._last_exclusive.get(key)
            if last is not None:
                deps.add(last)
            if exclusive:
                deps.update(self._shared_since.pop(key, ()))
                self._last_exclusive[key] = seq
            else:
                self._shared_since.setdefault(key, set()).add(seq)
        deps &= self._nodes.keys()  # only unfinished ones matter
        node = _Node(seq, deps, items, barrier, after, size)
        for d in deps:
            self._nodes[d].dependents.append(seq)
        self._nodes[seq] = node
        self._pending[seq] = None
        self._barriers_pending += barrier

    # -- claiming ----------------------------------------------------------------

    def _ready(self, node: _Node, group: set[int]) -> bool:
        if not node.deps <= group:
            return False
        if node.after is not None and node.after > self._next_low:
            # every unfinished transaction below `after` must be in this group
            for seq in self._nodes:
                if seq >= node.after:
                    break
                if seq not in group:
                    return False
        return True

    def waiting(self) -> int:
        """Transactions added and not claimed yet."""
        return len(self._pending)

    def barrier_waiting(self) -> bool:
        """Whether a barrier is added and not claimed yet."""
        return self._barriers_pending > 0

    def claim(self, *, max_count: int = 1, max_bytes: int = 1 << 62, allow_barrier: bool = True,
              scan: int = 512, contiguous: bool = False) -> list[int]:
        """The next group for a worker, in seq order; [] when nothing is ready for it.

        `contiguous` (for commit-order preservation) stops at the first transaction that is
        not ready, so a group never overtakes one that another worker will commit later."""
        group: list[int] = []
        members: set[int] = set()
        size = 0
        for i, seq in enumerate(self._pending):
            if i >= scan:
                break
            node = self._nodes[seq]
            if node.barrier:
                if not group and allow_barrier and self._ready(node, members):
                    group.append(seq)
                break  # nothing after a barrier can be ready before it finishes
            if not self._ready(node, members):
                if contiguous:
                    break
                continue
            if group and size + node.size > max_bytes:
                break
            group.append(seq)
            members.add(seq)
            size += node.size
            if len(group) >= max_count:
                break
        for seq in group:
            del self._pending[seq]
            self._barriers_pending -= self._nodes[seq].barrier
        return group

    # -- finishing ---------------------------------------------------------------

    def finish(self, seqs: Iterable[int]) -> None:
        for seq in seqs:
            node = self._nodes.pop(seq)
            if seq in self._pending:                  # finished without being claimed
                del self._pending[seq]
                self._barriers_pending -= node.barrier
            for dependent in node.dependents:
                other = self._nodes.get(dependent)
                if other is not None:
                    other.deps.discard(seq)
            for key, exclusive in node.keys:
                if exclusive:
                    if self._last_exclusive.get(key) == seq:
                        del self._last_exclusive[key]
                else:
                    holders = self._shared_since.get(key)
                    if holders is not None:
                        holders.discard(seq)
                        if not holders:
                            del self._shared_since[key]
        self._next_low = next(iter(self._nodes), self._last_seq + 1)

    # -- state ---------------------------------------------------------------------

    @property
    def low_water(self) -> int:
        """Every transaction with a smaller seq is finished."""
        return self._next_low

    def idle(self) -> bool:
        return not self._nodes

    def tracked_keys(self) -> int:
        return len(self._last_exclusive) + len(self._shared_since)
