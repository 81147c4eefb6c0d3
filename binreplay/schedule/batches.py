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

A span of the source during which a session holds temporary tables (schedule/temporary.py) is one
batch, a *unit*, whatever its length in transactions: applied in one target session and one commit,
so that neither the resume point nor a lost connection can fall where a temporary table is open.
A unit may go on into the next binlog file: it then has one progress row per file, all in its one
commit. What cannot share that commit (DDL, a transaction the source rolled back, more than
`max_unit_bytes`, a transaction left to a later run) cuts the unit, with a warning: the rest of the
span is applied transaction by transaction in the same session, as the source ran it, but a rerun
from inside it would miss the temporary tables: the progress rows of its commits say so
(`Batch.temporary_open`), and such a rerun refuses. A --follow round that is not the last leaves a
unit still open at its end to the next round (`flush(keep_span=True)`) instead of cutting it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from binreplay.model import BinlogPosition, Transaction
from binreplay.schedule.limits import BatchLimits
from binreplay.schedule.scheduler import KeySet
from binreplay.schedule.temporary import Follow, TemporaryTables


@dataclass(frozen=True)
class FileRange:
    """What one progress row records: a batch's range in one binlog file, up to its last member there."""

    file_index: int
    file: str
    start_pos: int
    end_pos: int
    transactions: int                          # applied by this commit in the range
    last_gtid: object | None


@dataclass(eq=False)
class Batch:
    seq: int                                   # order among batches, from 0
    file_index: int
    file: str
    start_pos: int                             # the range of source positions it covers
    end_pos: int                               # (the mark moves here once it and all before it are done,
                                               # if it covers source transactions: see `covered`)
    members: list[Transaction] = field(default_factory=list)   # to apply, in source order
    covered: int = 0                           # source transactions in the range (members included)
    size: int = 0                              # binlog bytes of the members
    barrier: bool = False
    hold: bool = False                         # beyond a stop GTID: the mark must not pass it
    keys: KeySet = field(default_factory=dict)
    after: int | None = None                   # commit-order mode: batches before this one finish first
    statement: bytes | None = None             # its rows as one BINLOG statement, built ahead (apply/encoders.py)
    unit: bool = False                         # a span with temporary tables open: one session, one commit
    # A transaction of a span that could not be one unit: it needs the temporary tables an earlier
    # commit of the same session opened here (a new session would not have them).
    temporary_from: BinlogPosition | None = None
    # Temporary tables of a span that could not be one unit (opened here) are still open after this
    # commit: its progress row says so, and a rerun from its end refuses (it would not have them).
    temporary_open: BinlogPosition | None = None
    # How many source (re)starts came before it (TemporaryTables.starts): a session that applied batches
    # of fewer may hold temporary tables the source has since closed (apply/applier.py drops them).
    source_starts: int = 0
    # A unit that goes on past the end of a binlog file: its ranges in the earlier files (file_index,
    # file and start_pos are then those of its range in the last one).
    earlier_files: list[FileRange] = field(default_factory=list)
    # A batch cut by table (schedule/partition.py): its members are not contiguous, so it records one
    # range per run of consecutive members; only the pair's last batch covers source transactions.
    ranges: list[FileRange] | None = None

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

    def records(self) -> list[FileRange]:
        """Its progress rows: one per binlog file it spans (only a unit spans several), or one per run
        of consecutive members (a batch cut by table)."""
        if self.ranges is not None:
            return list(self.ranges)
        here = [m for m in self.members if m.file_index == self.file_index] if self.earlier_files else self.members
        return [*self.earlier_files, FileRange(self.file_index, self.file, self.start_pos, self.record_end, len(here),
                                               self.last.gtid)]

    def continue_in(self, trx: Transaction) -> None:
        """A unit goes on in the next binlog file (with `trx`, a member): its range so far becomes a row."""
        here = [m for m in self.members if m.file_index == self.file_index]
        self.earlier_files.append(FileRange(self.file_index, self.file, self.start_pos, here[-1].end_pos, len(here),
                                            here[-1].gtid))
        self.file_index, self.file, self.start_pos = trx.file_index, trx.file, trx.start_pos

    def add_keys(self, keys: KeySet) -> None:
        """A member's conflict keys: a key held exclusively by any member is exclusive for the batch."""
        mine = self.keys
        for key, exclusive in keys.items():
            if exclusive or key not in mine:
                mine[key] = exclusive


class Batcher:
    """Cuts transactions, in source order, into batches; `add` returns the batches it closed."""

    def __init__(self, limits: BatchLimits, *, temporary: TemporaryTables | None = None, units: bool = True,
                 warn: Callable[[str], None] = lambda _message: None) -> None:
        """`temporary`: follow temporary tables, and with `units` apply their spans as units (False with
        --preserve-gtids, where a commit carries one GTID: each span is then cut, and named); `warn`:
        where a span that could not be one unit is reported."""
        self.limits = limits
        self.temporary = temporary
        self.units = units
        self.warn = warn
        self._cut: str | None = None               # why the open span could not stay one unit
        self._open: Batch | None = None
        self._seq = 0
        self._firsts: deque[tuple[int, int]] = deque()   # (first transaction's seq, batch seq)

    def add(self, trx: Transaction, *, apply: bool, hold: bool = False, keys: KeySet | None = None,
            after: int | None = None) -> list[Batch]:
        """Take the next transaction; `apply` False: it rides along (not applied); `hold`: a later run
        may still apply it (it ends the open batch and stands alone, never applied by this run).
        `keys` and `after` (a transaction seq, commit-order mode) are the transaction's dependencies."""
        closed: list[Batch] = []
        follow = self.temporary.follow(trx) if apply and self.temporary is not None else None
        b = self._open
        if follow is not None:
            restarted = follow.ended_before
        else:    # not applied: its file may still say that the source restarted
            restarted = self.temporary is not None and self.temporary.pass_by(trx)
        if restarted:
            # The source restarted: the open span ended there (as one unit, if it still was one).
            self._cut = None
            if b is not None and b.unit:
                b.temporary_open = None    # nothing after it needs them: a rerun may go on from its end
                closed.append(b)
                b = self._open = None
        if b is not None and b.unit:
            cut = self._unit_cut(b, trx, hold, follow)
            if cut:
                closed.append(b)
                b = self._open = None
                # Its temporary tables stay open in the session for what follows.
                closed[-1].temporary_from = self._cut_span(cut, trx)
            elif trx.file_index != b.file_index:
                b.continue_in(trx)
        elif b is not None and (b.file_index != trx.file_index or hold or b.hold
                                or apply and (trx.is_barrier or b.barrier or self._full(b, trx))):
            closed.append(b)
            b = self._open = None
        if b is None:
            b = self._open = self._new(trx)
            if follow is not None and follow.member and follow.open_after:
                if not follow.fits or not self.units:
                    self._cut_span(follow.why or "the commits of --preserve-gtids (one per transaction)", trx)
                elif self._cut is None:
                    b.unit = True
        b.end_pos = trx.end_pos
        b.covered += 1
        b.hold = hold
        if apply:
            b.members.append(trx)
            b.size += trx.size
            b.barrier = b.unit or trx.is_barrier
            b.temporary_open = self.temporary.opened_at if self.temporary is not None and self.temporary.any_open \
                else None
            if follow is not None and follow.member and not b.unit and b.barrier and self.temporary is not None:
                b.temporary_from = self.temporary.opened_at
            if keys:
                b.add_keys(keys)
            if after is not None:
                # Every transaction before `after` finished first: the batches before the one holding
                # `after - 1` (this batch's own members are applied in order anyway).
                bound = min(self.batch_of(after - 1) + 1, b.seq)
                b.after = bound if b.after is None else min(b.after, bound)
        if follow is not None and follow.member and not follow.open_after:
            self._cut = None       # the span is over: the next one may be a unit again
        if b.unit and (follow is None or follow.open_after):
            return closed          # the span goes on: so does its unit
        if b.barrier or b.hold:   # nothing may join either
            closed.append(b)
            self._open = None
        return closed

    def _unit_cut(self, b: Batch, trx: Transaction, hold: bool, follow: Follow | None) -> str:
        """Why `trx` cannot join the open unit ("" when it can)."""
        if trx.file_index != b.file_index and follow is None:
            return "the end of a binlog file"
        if hold:
            return "a transaction left to a later run (beyond a stop GTID)"
        if follow is None:
            return ""              # not applied: rides along in the unit's range
        if not follow.fits:
            return follow.why
        if b.size + trx.size > self.limits.max_unit_bytes:
            return f"more than {self.limits.max_unit_bytes >> 20} MiB of transactions"
        return ""

    def _cut_span(self, why: str, trx: Transaction) -> BinlogPosition | None:
        """Note (and report, once) that the open span cannot stay one unit; where it began."""
        temporary = self.temporary
        assert temporary is not None
        if self._cut is not None:
            return temporary.opened_at
        self._cut = why
        self.warn(f"temporary table(s) {temporary.names() or 'of a session'} (opened at {temporary.opened_at}) "
                  f"stay open across {why} "
                  f"at {trx.start}: that span is applied in several commits of one session, so an interruption "
                  "inside it cannot be resumed exactly (a rerun would miss the temporary tables); if one happens, "
                  "restore the backup and replay again")
        return temporary.opened_at

    def _full(self, b: Batch, trx: Transaction) -> bool:
        return self.limits.full(len(b.members), b.size, trx.size)

    def _new(self, trx: Transaction) -> Batch:
        b = Batch(self._seq, trx.file_index, trx.file, trx.start_pos, trx.end_pos,
                  source_starts=self.temporary.starts if self.temporary is not None else 0)
        self._firsts.append((trx.seq, b.seq))
        self._seq += 1
        return b

    def batch_of(self, trx_seq: int) -> int:
        """The batch holding a transaction (-1 before the first); asked with growing seqs only."""
        firsts = self._firsts
        while len(firsts) > 1 and firsts[1][0] <= trx_seq:
            firsts.popleft()
        return firsts[0][1] if firsts and firsts[0][0] <= trx_seq else -1

    def flush(self, *, keep_span: bool = False) -> list[Batch]:
        """The open batch, closed (at the end of the input, or before waiting for more). `keep_span`: more
        input is to come (a --follow round that is not the last): a unit whose span is still open is not
        applied but left, with everything after its CREATE, to the next round, which reads it whole."""
        b, self._open = self._open, None
        if b is not None and b.unit and self.temporary is not None and self.temporary.any_open:
            if keep_span:
                return []
            self._cut_span("the end of the input", b.last)
        return [b] if b is not None else []

    @property
    def open_batch(self) -> Batch | None:
        return self._open
