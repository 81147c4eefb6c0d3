"""The low-water mark: the end of the longest prefix of the source that is done.

Every batch the coordinator cut is added in order: done at once when it applies nothing (its
transactions are outside the selection or were applied by an earlier run), when its worker
commits it otherwise. A held batch (beyond a stop GTID: a later run may still apply it) is
never done, so the mark cannot pass it. A batch that covers no source transaction of its own (a
side of a pair cut by table, schedule/partition.py, other than the pair's last batch, which
covers the whole pair) does not move the mark: it always stays at the end of a transaction.
Thread-safe: workers finish batches, the coordinator adds them and reads the mark.
"""

from __future__ import annotations

import threading

from binreplay.model import BinlogPosition


class PositionTracker:
    def __init__(self, start: BinlogPosition | None, transactions_before: int = 0) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, list] = {}     # batch seq -> [end position, transactions, done]
        self._position = start
        self._count = transactions_before        # source transactions up to the mark

    def add(self, seq: int, end: BinlogPosition, transactions: int, *, done: bool, hold: bool = False) -> None:
        with self._lock:
            self._entries[seq] = [end, transactions, done and not hold]
            self._advance()

    def done(self, seq: int) -> None:
        with self._lock:
            self._entries[seq][2] = True
            self._advance()

    def _advance(self) -> None:
        entries = self._entries
        while entries:
            seq = next(iter(entries))
            end, transactions, finished = entries[seq]
            if not finished:
                return
            del entries[seq]
            if transactions:
                self._position = end
                self._count += transactions

    def mark(self) -> tuple[BinlogPosition | None, int]:
        """(the mark, source transactions up to it)."""
        with self._lock:
            return self._position, self._count
