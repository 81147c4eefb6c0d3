"""The worker pool: N threads, each with its own Applier (connection), claiming batches from the
scheduler and applying each as one target transaction.

Threads suffice: a worker spends its time waiting on the target, not in Python. The coordinator
submits batches in source order; `submit` blocks while too many are in flight, which bounds
memory however large the binlogs are.

Wake-ups are counted, not broadcast: a submitted batch wakes one idle worker, a finished batch
as many as there are batches waiting, and a worker that claimed one while more wait passes the
wake-up on. Waking every idle worker on every change made eight workers slower than one on a
loaded machine (each woken thread competes for the GIL and finds nothing to claim). Barriers,
which only worker 0 may claim, still wake everyone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from binreplay.apply.applier import Applier
from binreplay.errors import Interrupted
from binreplay.schedule.batches import Batch
from binreplay.schedule.limits import IN_FLIGHT, InFlightLimits
from binreplay.schedule.scheduler import Scheduler

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, appliers: list[Applier], *, on_done: Callable[[Batch], None],
                 limits: InFlightLimits = IN_FLIGHT, preserve_commit_order: bool = False) -> None:
        self.appliers = appliers
        self.on_done = on_done                 # called by the worker under the pool's lock
        self.limits = limits
        self.scheduler = Scheduler()
        self.lock = threading.Lock()
        self._claimable = threading.Condition(self.lock)   # idle workers wait here for a batch
        self._changed = threading.Condition(self.lock)     # the coordinator and commit turns wait here
        self._batches: dict[int, Batch] = {}
        self._bytes = 0
        self._stopping = False
        self.busy = 0                          # workers applying a batch right now
        self.error: BaseException | None = None
        self._threads = [threading.Thread(target=self._work, args=(i,), name=a.name, daemon=True)
                         for i, a in enumerate(appliers)]
        if preserve_commit_order:
            for a in appliers:
                a.commit_gate = self._wait_for_turn

    def _wait_for_turn(self, batch: Batch, timeout: float = 5.0) -> bool:
        """--preserve-commit-order: commit only once every earlier batch has committed. False after
        `timeout`: the caller rolls back and retries, releasing its locks in case the earlier batch
        is waiting for them."""
        with self.lock:
            turn = self._changed.wait_for(lambda: self._stopping or self.scheduler.low_water >= batch.seq,
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

    def submit(self, batch: Batch) -> None:
        with self.lock:
            lim = self.limits
            while not self._stopping and self._batches and (len(self._batches) >= lim.max_batches
                                                            or self._bytes >= lim.max_bytes):
                self._changed.wait()
            self._raise_error()
            self._batches[batch.seq] = batch
            self._bytes += batch.held_bytes
            self.scheduler.add(batch.seq, batch.keys, barrier=batch.barrier, after=batch.after, size=batch.size)
            self._wake_workers(1)

    def backlog(self) -> int:
        """Batches submitted that no worker has claimed yet (read without the lock: a hint)."""
        return self.scheduler.waiting()

    def drain(self, on_wait: Callable[[], None] | None = None) -> None:
        """Wait until everything submitted is applied (or a worker failed); `on_wait` runs every half second."""
        while True:
            with self.lock:
                if not self._batches or self._stopping:
                    self._raise_error()
                    return
                self._changed.wait(timeout=0.5)
            if on_wait is not None:
                on_wait()

    def stop(self) -> None:
        """Stop claiming; workers finish the batch they hold. Unclaimed work is dropped (a rerun resumes)."""
        with self.lock:
            self._stopping = True
            self._claimable.notify_all()
            self._changed.notify_all()
        for t in self._threads:
            if t.ident is not None:   # started (a run refused before applying never starts them)
                t.join()
        for a in self.appliers:
            a.close()

    def _wake_workers(self, n: int) -> None:
        """Wake up to `n` idle workers (under the lock): all of them while a barrier waits, which
        only worker 0 may claim."""
        if self.scheduler.barrier_waiting():
            self._claimable.notify_all()
        elif n > 0:
            self._claimable.notify(n)

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
                claimed: list[int] = []
                while not self._stopping:
                    claimed = self.scheduler.claim(allow_barrier=allow_barrier)
                    if claimed:
                        break
                    self._claimable.wait()
                if not claimed:
                    return
                self._wake_workers(min(1, self.scheduler.waiting()))   # more may be ready: pass it on
                batch = self._batches[claimed[0]]
                self.busy += 1
            started = time.monotonic()
            try:
                applier.apply_batch(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the coordinator, which raises it
                with self.lock:
                    self.busy -= 1
                    if self.error is None:
                        # Anything but a BinreplayError is a bug: it reaches the CLI as it is (exit 1).
                        self.error = exc
                    self._stopping = True
                    self._claimable.notify_all()
                    self._changed.notify_all()
                return
            applier.busy_s += time.monotonic() - started
            with self.lock:
                self.on_done(batch)
                self.busy -= 1
                self.scheduler.finish(claimed)
                self._bytes -= self._batches.pop(batch.seq).held_bytes
                self._changed.notify_all()
                # Its dependents may be ready now (this worker claims one itself when it loops).
                self._wake_workers(self.scheduler.waiting() - 1)
