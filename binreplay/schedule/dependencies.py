"""Dependency modes: what makes two source transactions unsafe to apply concurrently.

row           (default) primary/unique key values of every row image, collation-aware or
              coarser; tables without a key, and FK-connected tables, fall back to a
              table (or FK-group) key. See keys.py.
table         one key per table (FK-connected tables share one).
commit-order  the source's own group commit: MariaDB commit_id (a group's transactions
              may run together), MySQL last_committed/sequence_number (a transaction may
              start once everything up to its last_committed is applied; the counters
              restart in every binlog file, so each file starts after the previous drained).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from binreplay.model import MariadbGtid, MysqlGtid, Transaction, TrxKind
from binreplay.schedule.scheduler import KeySet, conflict

MODES = ("row", "table", "commit-order")

# A transaction whose keys were not computed (the coordinator had no time to spare, see
# run/coordinator.py) conflicts with every other: it holds this key exclusively, and every keyed
# transaction that changes rows holds it shared.
EVERYTHING = ("everything",)
UNKEYED: KeySet = {EVERYTHING: True}


@dataclass
class CommitOrder:
    """Turns source group-commit information into `after` bounds for the scheduler."""

    _group_commit_id: int | None = None
    _group_first_seq: int = 0
    _file_index: int = -1
    _file_first_seq: int = 0
    _seq_by_sequence_number: dict[int, int] = field(default_factory=dict)

    def after(self, trx: Transaction) -> int:
        if trx.file_index != self._file_index:
            self._file_index = trx.file_index
            self._file_first_seq = trx.seq
            self._seq_by_sequence_number.clear()
        g = trx.gtid
        if isinstance(g, MariadbGtid):
            if g.commit_id is None or g.commit_id != self._group_commit_id:
                self._group_commit_id = g.commit_id
                self._group_first_seq = trx.seq
            return self._group_first_seq if g.commit_id is not None else trx.seq
        if isinstance(g, MysqlGtid) and g.sequence_number is not None and g.last_committed is not None:
            self._seq_by_sequence_number[g.sequence_number] = trx.seq
            prior = self._seq_by_sequence_number.get(g.last_committed)
            return prior + 1 if prior is not None else self._file_first_seq
        return trx.seq  # no group-commit information: strictly in order


@dataclass
class KeyPayoff:
    """Whether row keys are worth computing now. They cost the coordinator a Python step per row and
    pay only when they let a batch run beside the one before it. When GIVE_UP keyed batches in a row
    still conflicted with the keyed batch before them (OLTP's 1,000-transaction batches all share a
    row or two, hot rows), keys are not computed for the next PAUSE batches, then tried again: such
    batches go unkeyed, applied one after the other as they would have been anyway."""

    GIVE_UP = 4
    PAUSE = 32

    _previous: KeySet | None = None     # the keys of the last keyed batch submitted
    _conflicting: int = 0               # keyed batches in a row that conflicted with the one before
    _pause: int = 0                     # batches still to submit before keys are tried again

    @property
    def paused(self) -> bool:
        return self._pause > 0

    def submitted(self, keys: KeySet) -> None:
        """A batch went to the pool with these keys (not a barrier)."""
        if self._pause:
            self._pause -= 1
            return
        if not keys or keys.get(EVERYTHING):
            return                      # not keyed: says nothing about what keys would give
        previous, self._previous = self._previous, keys
        if previous is None:
            return
        if not conflict(previous, keys):
            self._conflicting = 0
            return
        self._conflicting += 1
        if self._conflicting >= self.GIVE_UP:
            self._conflicting, self._pause, self._previous = 0, self.PAUSE, None


class Dependencies:
    def __init__(self, mode: str, schema, *, serial: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.schema = schema
        # One worker applies everything in source order anyway: computing keys would only
        # cost time (the main thread's CPU is the bottleneck on small machines).
        self.serial = serial
        self.commit_order = CommitOrder()

    def of(self, trx: Transaction) -> tuple[KeySet, int | None]:
        """(conflict keys, after bound) of a transaction; barriers need neither."""
        if trx.is_barrier:
            if self.mode == "commit-order":
                self.commit_order.after(trx)  # keep the file/group bookkeeping in step
            return {}, None
        if self.serial:
            return {}, None
        if self.mode == "commit-order":
            return {}, self.commit_order.after(trx)
        from binreplay.schedule.keys import transaction_keys

        keys = transaction_keys(trx, self.schema, self.mode)
        if keys:
            keys[EVERYTHING] = False
        return keys, None

    def unkeyed(self, trx: Transaction) -> tuple[KeySet, int | None]:
        """What `of` says when row keys are not worth computing: row changes conflict with everything."""
        if trx.kind is not TrxKind.ROWS or trx.is_barrier or self.serial or self.mode == "commit-order":
            return self.of(trx)
        return dict(UNKEYED), None

    def schema_changed(self) -> None:
        if self.schema is not None:
            self.schema.invalidate()
