"""The replay run: options, preflight, the coordinator that ties the stages together."""

from binreplay.run.coordinator import run_replay
from binreplay.run.options import ReplayOptions, default_workers

__all__ = ["ReplayOptions", "default_workers", "run_replay"]
