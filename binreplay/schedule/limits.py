"""The limits of a replay's schedule, in one place: the run applies them, `binreplay plan` simulates them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchLimits:
    """How many source transactions may share one target commit (a batch, schedule/batches.py).

    Fewer, larger commits cost the target less (one fsync and two round trips per batch) and the
    coordinator less (per-batch work); 1,000 small OLTP transactions (~2 MB) per commit measured
    faster than 100 at 2 and 8 workers and the same at 1. The byte bound keeps a batch's one BINLOG
    statement well under max_allowed_packet and a retry cheap."""

    max_transactions: int = 1000
    max_bytes: int = 4 << 20
    # A span with temporary tables open is one commit whatever its length (schedule/temporary.py), up to
    # this: it is held in memory until it ends, like the batches in flight (InFlightLimits.max_bytes).
    max_unit_bytes: int = 32 << 20

    def full(self, count: int, size: int, next_size: int) -> bool:
        """Whether a batch of `count` transactions and `size` bytes must close before one of `next_size`
        (a transaction larger than `max_bytes` still makes a batch of its own)."""
        return count >= self.max_transactions or count > 0 and size + next_size > self.max_bytes


@dataclass(frozen=True)
class InFlightLimits:
    """How much the coordinator may submit before the pool has applied it: bounds memory however large
    the binlogs are (submit blocks beyond either limit; bytes count a batch's statement built ahead)."""

    max_batches: int = 64
    max_bytes: int = 32 << 20


BATCH = BatchLimits()
IN_FLIGHT = InFlightLimits()
