"""Waiting out a target that went away (a restart, a failover, a network cut).

Every session of a run to the target (each worker's, the coordinator's control session)
reconnects through one `Reconnector`, so an outage is one wait: announced once, shown while it
lasts, and bounded by `--reconnect-timeout` counted from the first reconnection that failed.
Nothing is lost by waiting: what was applied is in the target's progress records, and each
session goes on from them (a batch whose COMMIT was cut off is looked up, never guessed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pymysql

from binreplay.errors import Interrupted, TargetError, TargetUnreachable, connection_lost, describe, first_line

T = TypeVar("T")

# How often a session tries the target again, and how often a wait is shown again.
RETRY_EVERY_S = 1.0
NOTICE_EVERY_S = 10.0
# A target restart takes seconds to minutes (InnoDB crash recovery of a large redo log, a failover):
# five minutes rides through those, and a target that is really gone still ends the run in bounded time.
DEFAULT_RECONNECT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class OutageNotice:
    """One thing to show about an outage: `state` is "lost" (the wait begins), "waiting" (again every
    NOTICE_EVERY_S) or "back"."""

    state: str
    waited_s: float
    timeout_s: float
    reason: str

    @property
    def message(self) -> str:
        if self.state == "lost":
            return (f"the target is unreachable ({self.reason}); waiting up to {self.timeout_s:.0f} s for it to come "
                    "back (--reconnect-timeout)")
        if self.state == "waiting":
            return f"waiting for the target: {self.waited_s:.0f} s of {self.timeout_s:.0f} s ({self.reason})"
        return f"the target is back after {self.waited_s:.0f} s; continuing from its progress records"


def unreachable(exc: BaseException) -> bool:
    """`exc` says the target is not there (cannot connect, or the session was lost), not that it refused."""
    return isinstance(exc, TargetUnreachable) or (isinstance(exc, pymysql.err.MySQLError) and connection_lost(exc))


class Reconnector:
    """Shared by every session to one target (thread-safe)."""

    def __init__(self, timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
                 notify: Callable[[OutageNotice], None] | None = None) -> None:
        self.timeout_s = timeout_s
        self._notify = notify
        self._lock = threading.Lock()
        self._down_since: float | None = None    # when the current outage was first met
        self._next_notice = 0.0
        self._gave_up = False                    # an outage outlasted the timeout: the run is ending
        self._stopping = False                   # a plain flag: set from a signal handler

    def call(self, attempt: Callable[[], T]) -> T:
        """`attempt()` (which connects and may query), retried every second while the target is
        unreachable, for at most the timeout; then a TargetError. Other errors propagate at once."""
        while True:
            try:
                result = attempt()
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._failed(exc)
                time.sleep(RETRY_EVERY_S)
                continue
            self._reached()
            return result

    def stop_waiting(self) -> None:
        """The run is stopping (safe from a signal handler): a session waiting, or meeting an
        unreachable target from now on, raises Interrupted instead of waiting."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        """The run is stopping: a wait of any kind (not only for the target) should end now."""
        return self._stopping

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        reason = first_line(exc) if isinstance(exc, TargetError) else describe(exc)
        with self._lock:
            first = self._down_since is None
            if self._down_since is None:
                self._down_since = now
            waited = now - self._down_since
            if self._stopping:
                raise Interrupted(f"stopped while waiting for the target ({reason})") from None
            if self._gave_up or waited >= self.timeout_s:
                self._gave_up = True
                raise TargetError(f"the target has been unreachable for {waited:.0f} s, longer than "
                                  f"--reconnect-timeout {self.timeout_s:g}: {reason}") from None
            notice = now >= self._next_notice
            if notice:
                self._next_notice = now + NOTICE_EVERY_S
        if first:
            self._show(OutageNotice("lost", waited, self.timeout_s, reason))
        if notice:
            self._show(OutageNotice("waiting", waited, self.timeout_s, reason))

    def _reached(self) -> None:
        if self._down_since is None:     # the common case, read without the lock
            return
        with self._lock:
            if self._down_since is None:
                return
            waited, self._down_since = time.monotonic() - self._down_since, None
        self._show(OutageNotice("back", waited, self.timeout_s, ""))

    def _show(self, notice: OutageNotice) -> None:
        if self._notify is not None:
            self._notify(notice)
