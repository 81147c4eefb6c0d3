"""SIGINT/SIGTERM while a command runs, and work on a thread whose failure the main thread raises.

Signal handlers only set a flag (and may call a stop function that is safe from a handler): the
work checks `raise_if_stopped()` between units, so a stop always lands on a boundary the
command can resume from. A second signal while stopping raises KeyboardInterrupt at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Generic, TypeVar

from binreplay.errors import Interrupted

T = TypeVar("T")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager: while inside, SIGINT/SIGTERM set `received` (and call `on_stop`)."""

    def __init__(self, on_stop: Callable[[], None] | None = None, *, second_interrupts: bool = True) -> None:
        self.received: int | None = None
        self._on_stop = on_stop
        self._second_interrupts = second_interrupts
        self._old: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        for sig in _SIGNALS:
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None and self._second_interrupts:
            raise KeyboardInterrupt  # a second signal: stop now
        self.received = signum
        if self._on_stop is not None:
            self._on_stop()

    def raise_if_stopped(self) -> None:
        if self.received is not None:
            raise Interrupted(f"interrupted by signal {self.received}")

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]  # what signal.signal returned


class Background(Generic[T]):
    """`work` on a daemon thread; `result()` joins it and raises what it raised, on the caller's thread."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._work = work
        self._value: T | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = exc

    def start(self) -> Background[T]:
        self.thread.start()
        return self

    def alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def result(self) -> T:
        # Joined in short steps, so signal handlers keep running on the main thread.
        while self.thread.is_alive():
            self.thread.join(timeout=0.2)
        self.raise_error()
        return self._value  # type: ignore[return-value]  # set when the work returned
