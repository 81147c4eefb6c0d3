"""The worker pool's limits, in one place: the pool applies them, `binreplay plan` simulates them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupLimits:
    """How many source transactions may share one target commit."""

    max_count: int = 100
    max_bytes: int = 4 << 20
    preserve_commit_order: bool = False


@dataclass(frozen=True)
class InFlightLimits:
    """How much the coordinator may submit before the pool has applied it: bounds memory however large
    the binlogs are (submit blocks beyond either limit)."""

    max_transactions: int = 5000
    max_bytes: int = 64 << 20


IN_FLIGHT = InFlightLimits()
