"""The worker pool: N threads, each with its own Applier (connection), claiming groups
from the scheduler and applying them.

Threads suffice: a worker spends its time waiting on the target, not in Python.
The coordinator (the replay loop) submits transactions in source order; `submit` blocks
while too many are in flight, which bounds memory however large the binlogs are.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from binreplay.apply.applier import Applier
from binreplay.errors import Interrupted
from binreplay.model import Transaction
from binreplay.schedule.limits import IN_FLIGHT, GroupLimits
from binreplay.schedule.scheduler import KeySet, Scheduler

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, appliers: list[Applier], limits: GroupLimits, *,
                 on_done: Callable[[list[Transaction]], None], max_in_flight: int = IN_FLIGHT.max_transactions,
                 max_in_flight_bytes: int = IN_FLIGHT.max_bytes) -> None:
        self.appliers = appliers
        self.limits = limits
        self.on_done = on_done                 # called under the pool's lock
        self.max_in_flight = max_in_flight
        self.max_in_flight_bytes = max_in_flight_bytes
        self.scheduler = Scheduler()
        self.lock = threading.Condition()
        self._trx: dict[int, Transaction] = {}
        self._bytes = 0
        self._stopping = False
        self.busy = 0                          # workers applying a group right now
        self.error: BaseException | None = None
        self._threads = [threading.Thread(target=self._work, args=(i,), name=a.name, daemon=True)
                         for i, a in enumerate(appliers)]
        if limits.preserve_commit_order:
            for a in appliers:
                a.commit_gate = self._wait_for_turn

    def _wait_for_turn(self, trxs: list[Transaction], timeout: float = 5.0) -> bool:
        """--preserve-commit-order: commit only once every earlier transaction has committed.
        False after `timeout`: the caller rolls back and retries, releasing its locks in case
        the earlier transaction is waiting for them."""
        with self.lock:
            turn = self.lock.wait_for(lambda: self._stopping or self.scheduler.low_water >= trxs[0].seq,
                                      timeout=timeout)
            if self._stopping:
                raise Interrupted("stopping before commit")
            return turn

    @property
    def retries(self) -> int:
        return sum(a.retries for a in self.appliers)

    @property
    def busy_s(self) -> float:
        """Worker-seconds spent applying: divided by the elapsed time, the parallelism achieved."""
        return sum(a.busy_s for a in self.appliers)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    # -- coordinator side ------------------------------------------------------------

    def submit(self, trx: Transaction, keys: KeySet, *, after: int | None = None) -> None:
        with self.lock:
            while (not self._stopping and self._trx and (len(self._trx) >= self.max_in_flight
                                                         or self._bytes >= self.max_in_flight_bytes)):
                self.lock.wait()
            self._raise_error()
            self._trx[trx.seq] = trx
            self._bytes += trx.size
            self.scheduler.add(trx.seq, keys, barrier=trx.is_barrier, after=after, size=trx.size)
            self.lock.notify_all()

    def drain(self, on_wait: Callable[[], None] | None = None) -> None:
        """Wait until everything submitted is applied (or a worker failed); `on_wait` runs every half second."""
        while True:
            with self.lock:
                if not self._trx or self._stopping:
                    self._raise_error()
                    return
                self.lock.wait(timeout=0.5)
            if on_wait is not None:
                on_wait()

    def stop(self) -> None:
        """Stop claiming; workers finish the group they hold. Unclaimed work is dropped (a rerun resumes)."""
        with self.lock:
            self._stopping = True
            self.lock.notify_all()
        for t in self._threads:
            t.join()
        for a in self.appliers:
            a.close()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    # -- worker side -------------------------------------------------------------------

    def _work(self, index: int) -> None:
        applier = self.appliers[index]
        # Only worker 0 runs barriers, so statements that use temporary tables always run
        # on the same connection (the one that created them).
        allow_barrier = index == 0
        while True:
            with self.lock:
                group: list[int] = []
                while not self._stopping:
                    group = self.scheduler.claim(max_count=self.limits.max_count, max_bytes=self.limits.max_bytes,
                                                 allow_barrier=allow_barrier,
                                                 contiguous=self.limits.preserve_commit_order)
                    if group:
                        break
                    self.lock.wait()
                if not group:
                    return
                trxs = [self._trx[s] for s in group]
                self.busy += 1
            started = time.monotonic()
            try:
                applier.apply_group(trxs)
            except BaseException as exc:  # noqa: BLE001 - handed to the coordinator, which raises it
                with self.lock:
                    self.busy -= 1
                    if self.error is None:
                        # Anything but a BinreplayError is a bug: it reaches the CLI as it is (exit 1).
                        self.error = exc
                    self._stopping = True
                    self.lock.notify_all()
                return
            applier.busy_s += time.monotonic() - started
            with self.lock:
                self.busy -= 1
                self.scheduler.finish(group)
                for s in group:
                    self._bytes -= self._trx.pop(s).size
                self.on_done(trxs)
                self.lock.notify_all()
