"""Batches: contiguous runs of source transactions that are applied in one target commit.

The coordinator cuts the stream into batches before anything is scheduled, so how many
transactions share a commit does not depend on how many workers there are (more workers
never mean smaller commits), and a batch is a contiguous range of the source: one progress
row records it (state/store.py), and committing batches in order is committing the source in
order (--preserve-commit-order costs a wait, not smaller groups).

A batch ends at `max_transactions` transactions to apply or `max_bytes` of them, at a barrier
(which is a batch by itself), at a transaction that must wait for a later run (beyond a stop
GTID), and at the end of a file (a progress row names one file). Transactions the run does not
apply (outside the selection, already applied) ride along in the range of the batch around them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from binreplay.model import BinlogPosition, Transaction
from binreplay.schedule.limits import BatchLimits
from binreplay.schedule.scheduler import KeySet


@dataclass(eq=False)
class Batch:
    seq: int                                   # order among batches, from 0
    file_index: int
    file: str
    start_pos: int                             # the range of source positions it covers
    end_pos: int
    members: list[Transaction] = field(default_factory=list)   # to apply, in source order
    covered: int = 0                           # source transactions in the range (members included)
    size: int = 0                              # binlog bytes of the members
    barrier: bool = False
    hold: bool = False                         # beyond a stop GTID: the mark must not pass it
    keys: KeySet = field(default_factory=dict)
    after: int | None = None                   # commit-order mode: batches before this one finish first
    statement: bytes | None = None             # its rows as one BINLOG statement, built ahead (apply/encoders.py)

    @property
    def start(self) -> BinlogPosition:
        return BinlogPosition(self.file_index, self.file, self.start_pos)

    @property
    def end(self) -> BinlogPosition:
        return BinlogPosition(self.file_index, self.file, self.end_pos)

    @property
    def last(self) -> Transaction:
        return self.members[-1]

    @property
    def held_bytes(self) -> int:
        """Memory it holds while in flight: its transactions' bytes and its statement built ahead."""
        return self.size + len(self.statement or b"")

    @property
    def record_end(self) -> int:
        """Where the range its progress row records ends: at its last member. Transactions riding
        along after it may have been applied by an earlier run whose row ends where they end."""
        return self.members[-1].end_pos

    def add_keys(self, keys: KeySet) -> None:
        """A member's conflict keys: a key held exclusively by any member is exclusive for the batch."""
        mine = self.keys
        for key, exclusive in keys.items():
            if exclusive or key not in mine:
                mine[key] = exclusive


class Batcher:
    """Cuts transactions, in source order, into batches; `add` returns the batches it closed."""

    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self._open: Batch | None = None
        self._seq = 0
        self._firsts: deque[tuple[int, int]] = deque()   # (first transaction's seq, batch seq)

    def add(self, trx: Transaction, *, apply: bool, hold: bool = False, keys: KeySet | None = None,
            after: int | None = None) -> list[Batch]:
        """Take the next transaction; `apply` False: it rides along (not applied); `hold`: a later run
        may still apply it (it ends the open batch and stands alone, never applied by this run).
        `keys` and `after` (a transaction seq, commit-order mode) are the transaction's dependencies."""
        closed: list[Batch] = []
        b = self._open
        if b is not None and (b.file_index != trx.file_index or hold or b.hold
                              or apply and (trx.is_barrier or b.barrier or self._full(b, trx))):
            closed.append(b)
            b = self._open = None
        if b is None:
            b = self._open = self._new(trx)
        b.end_pos = trx.end_pos
        b.covered += 1
        b.hold = hold
        if apply:
            b.members.append(trx)
            b.size += trx.size
            b.barrier = trx.is_barrier
            if keys:
                b.add_keys(keys)
            if after is not None:
                # Every transaction before `after` finished first: the batches before the one holding
                # `after - 1` (this batch's own members are applied in order anyway).
                bound = min(self.batch_of(after - 1) + 1, b.seq)
                b.after = bound if b.after is None else min(b.after, bound)
        if b.barrier or b.hold:   # nothing may join either
            closed.append(b)
            self._open = None
        return closed

    def _full(self, b: Batch, trx: Transaction) -> bool:
        lim = self.limits
        return len(b.members) >= lim.max_transactions or bool(b.members) and b.size + trx.size > lim.max_bytes

    def _new(self, trx: Transaction) -> Batch:
        b = Batch(self._seq, trx.file_index, trx.file, trx.start_pos, trx.end_pos)
        self._firsts.append((trx.seq, b.seq))
        self._seq += 1
        return b

    def batch_of(self, trx_seq: int) -> int:
        """The batch holding a transaction (-1 before the first); asked with growing seqs only."""
        firsts = self._firsts
        while len(firsts) > 1 and firsts[1][0] <= trx_seq:
            firsts.popleft()
        return firsts[0][1] if firsts and firsts[0][0] <= trx_seq else -1

    def flush(self) -> list[Batch]:
        """The open batch, closed (at the end of the input, or before waiting for more)."""
        b, self._open = self._open, None
        return [b] if b is not None else []

    @property
    def open_batch(self) -> Batch | None:
        return self._open
