"""`binreplay fetch`'s progress: what has been written to the spool (tqdm counter, plain lines, JSON)."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from binreplay.source.live.fetch_options import FetchStats


class FetchProgress:
    """`binreplay fetch`: what has been written to the spool, shown about once a second (a tqdm
    counter on a terminal, a line every 10 s in plain text, JSON `fetch` records). Called on the
    fetch thread after each transaction written: cheap unless it is time to show something."""

    def __init__(self, mode: str, stream: TextIO = sys.stderr) -> None:
        if mode == "auto":
            mode = "bar" if stream.isatty() else "plain"
        self.mode, self.stream = mode, stream
        self.interval = 10.0 if mode == "plain" else 1.0
        self._next = time.monotonic() + self.interval
        self._bar: Any = None   # a tqdm counter, once there is something to show

    def __call__(self, stats: FetchStats) -> None:
        now = time.monotonic()
        if self.mode == "none" or now < self._next:
            return
        self._next = now + self.interval
        self.show(stats)

    def show(self, stats: FetchStats) -> None:
        at = f"{stats.position[0]}:{stats.position[1]}" if stats.position else None
        if self.mode == "json":
            self.stream.write(json.dumps({"type": "fetch", "events": stats.events, "bytes": stats.bytes,
                                          "position": at, "files": len(stats.files), "reconnects": stats.reconnects,
                                          "time": round(time.time(), 3)}, sort_keys=True) + "\n")
        elif self.mode == "bar":
            from tqdm import tqdm

            if self._bar is None:
                self._bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, file=self.stream, desc="fetch",
                                 dynamic_ncols=True, mininterval=0.5)
            self._bar.update(stats.bytes - self._bar.n)
            self._bar.set_postfix_str(f"{stats.events:,} events | {at or ''}", refresh=True)
            return
        else:
            self.stream.write(f"binreplay: fetching: {stats.events} events ({stats.bytes} bytes) so far, "
                              f"up to {at or 'nothing yet'}\n")
        self.stream.flush()

    def close(self, stats: FetchStats | None = None) -> None:
        """Done (with the final stats when the fetch ended normally: JSON gets a last record)."""
        if self._bar is not None:
            self._bar.close()
        if stats is not None and self.mode == "json":
            self.show(stats)
