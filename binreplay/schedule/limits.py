"""The limits of a replay's schedule, in one place: the run applies them, `binreplay plan` simulates them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchLimits:
    """How many source transactions may share one target commit (a batch, schedule/batches.py)."""

    max_transactions: int = 100
    max_bytes: int = 4 << 20


@dataclass(frozen=True)
class InFlightLimits:
    """How much the coordinator may submit before the pool has applied it: bounds memory however large
    the binlogs are (submit blocks beyond either limit)."""

    max_batches: int = 64
    max_bytes: int = 48 << 20


IN_FLIGHT = InFlightLimits()
