"""What a replay with N workers would do: a discrete simulation of the real scheduler.

`binreplay plan` feeds every selected transaction, with the conflict keys its dependency
mode gives, to the same `Batcher`, `Partitioner` (pairs of batches cut by table, in the modes and
worker counts where replay cuts them) and `Scheduler` the replay uses, with the replay's own limits
(batches of at most 1,000 transactions / 4 MiB, 64 batches / 32 MiB in flight, a drain after every
barrier, barriers only on worker 0). Time is simulated: a batch costs one commit plus, per
transaction, a fixed cost and a cost per binlog byte. The coordinator is taken to be
infinitely fast, so the result is what the target side allows, an upper bound when reading
and keying are the bottleneck. Speed-ups are against one worker with the same model.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from binreplay.model import Transaction
from binreplay.schedule.batches import Batch, Batcher
from binreplay.schedule.limits import IN_FLIGHT, BatchLimits
from binreplay.schedule.partition import Partitioner
from binreplay.schedule.scheduler import KeySet, Scheduler

# Cost model, in microseconds: a durable commit (fsync), a round trip and statement
# overhead per transaction, and the server's apply rate for row data. Only their ratios
# matter for the speed-ups; on small transactions the durable commit and the round trips cost
# most (measured on MariaDB 10.11 with innodb_flush_log_at_trx_commit=1).
COMMIT_US = 1000.0
TRANSACTION_US = 50.0
BYTE_US = 0.02


def transaction_cost(size: int) -> float:
    return TRANSACTION_US + size * BYTE_US


@dataclass
class SimResult:
    workers: int
    time_us: float
    groups: int
    transactions: int
    busy_histogram: list[float]        # share of the time with k workers applying, k = 0..workers

    @property
    def average_busy(self) -> float:
        return sum(k * share for k, share in enumerate(self.busy_histogram))


@dataclass(order=True)
class _Running:
    finish: float
    worker: int
    batch: Batch = field(compare=False)


class Simulation:
    """One worker count, one dependency mode. Feed transactions in source order, then `close()`."""

    def __init__(self, workers: int, limits: BatchLimits = BatchLimits(), *,
                 table_keys: Callable[[Transaction], frozenset] | None = None) -> None:
        """`table_keys`: cut pairs of batches by these table keys as replay does (in its keyed modes,
        with more than one worker); None: not."""
        self.workers = workers
        self.batcher = Batcher(limits)
        self.partitioner = Partitioner(limits, table_keys) if table_keys is not None and workers > 1 else None
        self.scheduler = Scheduler()
        self._free = list(range(workers))
        self._running: list[_Running] = []
        self._queue: deque[Batch] = deque()
        self._batches: dict[int, Batch] = {}
        self._bytes = 0
        self._draining = False
        self._now = 0.0
        self._busy_time = [0.0] * (workers + 1)
        self._groups = 0
        self._count = 0

    def feed(self, trx: Transaction, keys: KeySet, after: int | None) -> None:
        batches = self.batcher.add(trx, apply=True, keys=keys, after=after)
        for batch in self.partitioner.take(batches) if self.partitioner is not None else batches:
            self._offer(batch)

    def _offer(self, batch: Batch) -> None:
        if not self._queue and self._window_open():  # the common case: nothing happens until the window closes
            self._submit(batch)
        else:
            self._queue.append(batch)
            self._run(final=False)

    def close(self) -> SimResult:
        batches = self.batcher.flush()
        if self.partitioner is not None:
            batches = self.partitioner.take(batches) + self.partitioner.flush()
        for batch in batches:
            self._offer(batch)
        self._run(final=True)
        total = self._now or 1.0
        return SimResult(self.workers, self._now, self._groups, self._count,
                         [t / total for t in self._busy_time])

    def _window_open(self) -> bool:
        return (not self._draining and len(self._batches) < IN_FLIGHT.max_batches
                and (not self._batches or self._bytes < IN_FLIGHT.max_bytes))

    def _run(self, final: bool) -> None:
        while True:
            # The coordinator submits as far as the pool lets it (WorkerPool.submit), and
            # waits for everything after a barrier (replay drains the pool there).
            while self._queue and self._window_open():
                self._submit(self._queue.popleft())
            if self._window_open() and not final:
                return  # the coordinator reads on
            self._claim()
            if not self._running:
                if self._batches or self._queue:
                    raise RuntimeError("plan simulation stalled (a scheduler bug)")
                return
            self._finish_next()

    def _submit(self, batch: Batch) -> None:
        self.scheduler.add(batch.seq, batch.keys, barrier=batch.barrier, after=batch.after, size=batch.size)
        self._batches[batch.seq] = batch
        self._bytes += batch.size
        self._count += len(batch.members)
        self._draining = batch.barrier

    def _claim(self) -> None:
        for worker in list(self._free):  # worker 0 (the only one allowed barriers) first
            claimed = self.scheduler.claim(allow_barrier=worker == 0)
            if not claimed:
                break  # nothing is ready for the others either
            batch = self._batches[claimed[0]]
            cost = COMMIT_US + sum(transaction_cost(t.size) for t in batch.members)
            heapq.heappush(self._running, _Running(self._now + cost, worker, batch))
            self._free.remove(worker)
            self._groups += 1

    def _finish_next(self) -> None:
        done = heapq.heappop(self._running)
        self._busy_time[self.workers - len(self._free)] += done.finish - self._now
        self._now = done.finish
        self.scheduler.finish([done.batch.seq])
        self._bytes -= self._batches.pop(done.batch.seq).size
        self._free.append(done.worker)
        self._free.sort()
        if self._draining and not self._batches:
            self._draining = False


@dataclass
class CriticalPathResult:
    longest_chain: int        # transactions in the longest chain of dependencies
    path_us: float            # apply cost along the costliest chain (commits not counted)
    total_us: float           # apply cost of everything

    @property
    def bound(self) -> float:
        """No number of workers can beat this speed-up in this mode."""
        return self.total_us / self.path_us if self.path_us else 1.0


class CriticalPath:
    """Longest dependency chains with unlimited workers, by the scheduler's conflict rules:
    a key held exclusively conflicts with any later holder, a shared one with a later
    exclusive holder; a barrier follows everything before it and precedes everything after;
    `after=N` follows every transaction before N."""

    def __init__(self) -> None:
        self._exclusive: dict[object, tuple[float, int]] = {}
        self._shared: dict[object, tuple[float, int]] = {}   # max over shared holders since the exclusive one
        self._floor = (0.0, 0)                               # the last barrier
        self._seqs: list[int] = []
        self._prefix: list[tuple[float, int]] = []           # max (finish, chain) over transactions so far
        self._total = 0.0

    def add(self, seq: int, keys: KeySet, barrier: bool, after: int | None, size: int) -> None:
        cost = transaction_cost(size)
        self._total += cost
        best = self._prefix[-1] if barrier and self._prefix else self._floor
        finish, chain = best
        if after is not None:
            i = bisect_left(self._seqs, after) - 1
            if i >= 0:
                finish, chain = max(finish, self._prefix[i][0]), max(chain, self._prefix[i][1])
        for key, exclusive in keys.items():
            for holder in (self._exclusive.get(key), self._shared.get(key) if exclusive else None):
                if holder is not None:
                    finish, chain = max(finish, holder[0]), max(chain, holder[1])
        mine = (finish + cost, chain + 1)
        if barrier:
            self._exclusive.clear()   # everything before the barrier is behind it now
            self._shared.clear()
            self._floor = mine
        for key, exclusive in keys.items():
            if exclusive:
                self._exclusive[key] = mine
                self._shared.pop(key, None)
            else:
                old = self._shared.get(key, (0.0, 0))
                self._shared[key] = (max(old[0], mine[0]), max(old[1], mine[1]))
        last = self._prefix[-1] if self._prefix else (0.0, 0)
        self._seqs.append(seq)
        self._prefix.append((max(last[0], mine[0]), max(last[1], mine[1])))

    def result(self) -> CriticalPathResult:
        finish, chain = self._prefix[-1] if self._prefix else (0.0, 0)
        return CriticalPathResult(chain, finish, self._total)
