"""Applying while the input is validated: the first transactions of a fresh run, held uncommitted.

Nothing may be applied from a bad file, so a run reads its whole selection before it commits
anything (run/preflight.py). That read is Python work on one core while the target waits. The early
apply lets the target work meanwhile: the validation read hands each transaction it accepted to a
thread that applies it, in source order, in ONE open target transaction on worker 0's session, with
the progress rows of its batches. Nothing of it is committed until the whole selection was accepted:

- the read accepts everything: the held transaction commits (`finish`); the run goes on after the
  last transaction held, as a resume would from there (the progress rows say what it applied);
- the read refuses the input, or the run is interrupted: `abandon` rolls it back, nothing applied;
- applying fails (the target rejects a row, a lost connection, a commit that did not happen): it is
  rolled back and the run applies from its start as if there had been no early apply, so every
  error is met and reported by the usual path.

Only what a rollback undoes completely is held: row transactions of transactional tables, in one
contiguous run from the selection's start. The first transaction that is anything else (DDL,
statements, a non-transactional table, a table the target lacks, a transaction a later run may
apply) ends the early apply, and so do EARLY_MAX_BYTES of transactions: the held transaction's
locks and undo stay bounded whatever the selection's size. Only a fresh run (the target has no run
of its own to resume or replace) applies early, with --apply binlog and without filters,
--preserve-gtids or --stop-gtid. Its batches are the run's, smaller (EARLY_BATCH); they share one commit.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from binreplay.apply.applier import Applier
from binreplay.devtools.faults import EARLY_LOCKSTEP, crash_point
from binreplay.errors import TargetStateError
from binreplay.model import BinlogPosition, Transaction
from binreplay.schedule.batches import Batch, Batcher
from binreplay.schedule.limits import BatchLimits
from binreplay.source.selection import Verdict
from binreplay.source.validated import BlockReader, refill

log = logging.getLogger(__name__)

EARLY_MAX_BYTES = 64 << 20     # source bytes held in the one open target transaction, at most
# Taken but not applied yet, at most: more would only cost the read time and memory, since the early
# apply ends when the read does (a target this far behind has work for the rest of the read).
BACKLOG_MAX_BYTES = 16 << 20
BACKLOG_MAX_TRANSACTIONS = 8192
# An early batch is at most this (or the run's limits, if smaller). Once the read has accepted everything,
# `finish` waits for the batch being applied: a small batch keeps that wait short (its transactions share
# the one commit anyway, so smaller batches cost only a round trip and a progress row each).
EARLY_BATCH = BatchLimits(max_transactions=250, max_bytes=512 << 10)


@dataclass
class EarlyApplied:
    """What the early apply committed: a contiguous range from the selection's start to `end`."""

    end: BinlogPosition
    covered: int          # source transactions in the range (applied or riding along)
    applied: int          # of them applied
    skipped: int          # of them outside the selection (riding along)
    row_events: int
    last: Transaction     # the last one applied


class EarlyApply:
    """Takes the transactions the validation read accepted (`offer`, on the reading thread) and
    applies them on `applier` in a thread of its own. `accept` returns a transaction to apply as it
    will be applied (filtered), or None when it cannot be held; `build` makes a batch's BINLOG statement."""

    def __init__(self, applier: Applier, limits: BatchLimits, files: list[Path],
                 accept: Callable[[Transaction], Transaction | None],
                 build: Callable[[list[Transaction]], bytes | None]) -> None:
        self._applier = applier
        self._files = files
        self._accept = accept
        self._build = build
        self._batcher = Batcher(replace(limits, max_transactions=min(limits.max_transactions,
                                                                     EARLY_BATCH.max_transactions),
                                        max_bytes=min(limits.max_bytes, EARLY_BATCH.max_bytes)))
        self._taking = True
        self._taken = 0                     # bytes taken
        # Each taken transaction's events: the validation read strips what it keeps of a transaction once
        # `offer` returns (source/validated.py). They are put back, and its bytes read again from the
        # file, to apply it; so the read never waits for the target.
        self._spans: dict[int, list] = {}
        self._cond = threading.Condition()
        self._queue: deque[Batch] = deque()   # closed batches, not applied yet
        self._backlog = 0                      # bytes taken to apply and not applied yet
        self._last = False                  # no more batches will come
        self._stopping = False              # apply nothing more (the input was accepted, or refused)
        self._failed = False
        self._held: list[Batch] = []        # applied in the open transaction
        self._row_events = 0
        self._thread = threading.Thread(target=self._work, name="early-apply", daemon=True)
        self._thread.start()

    # -- the validation read's side ---------------------------------------------------------------

    def offer(self, trx: Transaction, verdict: Verdict) -> None:
        """The next transaction of the selected range, as the validation read accepted it."""
        if not self._taking:
            return
        apply = verdict is Verdict.APPLY
        if self._failed or verdict is Verdict.DEFER:
            self._stop_taking()
            return
        if (self._taken + trx.size > EARLY_MAX_BYTES or self._backlog + trx.size > BACKLOG_MAX_BYTES
                or len(self._spans) >= BACKLOG_MAX_TRANSACTIONS):
            self._stop_taking()
            return
        if apply:
            accepted = self._accept(trx)
            if accepted is None or accepted.positions is not None:   # (not bytes of the file: not read again)
                self._stop_taking()
                return
            trx = accepted
            self._spans[trx.seq] = trx.spans
            self._backlog += trx.size
        self._taken += trx.size
        closed = self._batcher.add(trx, apply=apply)
        if closed:
            self._hand(closed)

    def _hand(self, batches: list[Batch], *, last: bool = False) -> None:
        with self._cond:
            self._queue.extend(batches)
            self._last |= last
            self._cond.notify_all()
            if EARLY_LOCKSTEP:
                self._cond.wait_for(lambda: not self._queue or self._failed or self._stopping)

    def _stop_taking(self) -> None:
        if self._taking:
            self._taking = False
            self._hand(self._batcher.flush(), last=True)

    # -- the run's side -----------------------------------------------------------------------------

    def finish(self) -> EarlyApplied | None:
        """The whole selection was accepted: commit what is held (the batch being applied finishes
        first; the batches not started are left to the run). None when nothing is committed (nothing
        held, or applying or committing failed: the run then applies from its start)."""
        self._stop()
        held = [b for b in self._held if b.members]
        if self._failed or not held:
            self._applier.rollback_held()
            if self._applier.rollback_kept:
                # Applying from the start would apply those changes twice (the table check said every
                # table was transactional: the target's engines changed meanwhile?).
                raise TargetStateError("the rollback of the transactions applied while the input was validated "
                                       "kept changes to non-transactional tables; applying them again would "
                                       "apply those twice: restore the backup and replay with --no-early-apply")
            return None
        if not self._applier.commit_held(held[-1]):
            log.info("the early apply did not commit; applying from the start")
            return None
        applied = sum(len(b.members) for b in self._held)
        log.info("%d transactions applied while the input was validated (committed once it was accepted)", applied)
        skipped = sum(b.covered - len(b.members) for b in self._held)
        return EarlyApplied(self._held[-1].end, sum(b.covered for b in self._held), applied, skipped,
                            self._row_events, held[-1].last)

    def abandon(self) -> None:
        """The input was refused or the run stops: roll back everything held."""
        self._stop()
        held = sum(len(b.members) for b in self._held) if self._applier.holding else 0
        self._applier.rollback_held()
        if held:
            log.info("the early apply rolled back %d held transactions: nothing was applied", held)

    def _stop(self) -> None:
        with self._cond:
            self._taking = False
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()
        self._spans.clear()

    # -- the applying thread ------------------------------------------------------------------------

    def _work(self) -> None:
        blocks: dict[int, BlockReader] = {}
        try:
            self._apply_taken(blocks)
        finally:
            for reader in blocks.values():
                os.close(reader.fd)

    def _apply_taken(self, blocks: dict[int, BlockReader]) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._last or self._stopping)
                if self._stopping or not self._queue:
                    return
                batch = self._queue[0]
            if batch.members and not self._apply(batch, blocks):
                return
            self._held.append(batch)
            with self._cond:
                self._queue.popleft()
                self._backlog -= batch.size
                self._cond.notify_all()

    def _apply(self, batch: Batch, blocks: dict[int, BlockReader]) -> bool:
        stripped = [(t.data, t.spans) for t in batch.members]   # as the validation read keeps them
        try:
            for trx in batch.members:
                trx.spans = self._spans.pop(trx.seq)
                if trx.file_index not in blocks:
                    blocks[trx.file_index] = BlockReader(os.open(self._files[trx.file_index], os.O_RDONLY))
                refill(trx, blocks[trx.file_index])
            batch.statement = self._build(batch.members)
            self._applier.apply_held(batch)
            crash_point("early-held")
            self._row_events += sum(t.row_events for t in batch.members)
            return True
        except BaseException as exc:  # noqa: BLE001 - the run applies from its start and meets it there
            log.info("the early apply stopped at %s (%s); applying from the start", batch.start, exc)
            with self._cond:
                self._failed = True
                self._cond.notify_all()
            return False
        finally:
            batch.statement = None
            for trx, (data, spans) in zip(batch.members, stripped):
                trx.data, trx.spans = data, spans
