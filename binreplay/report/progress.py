"""Reporting: what the replay is doing, for a human (tqdm bar) or a machine (JSON lines on stderr)."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TextIO

from binreplay.errors import UsageError

log = logging.getLogger(__name__)


@dataclass
class Summary:
    outcome: str = "running"           # complete, stopped (at a stop point), interrupted, failed, dry-run
    applied: int = 0                   # transactions applied by this process
    already_applied: int = 0           # found in the progress records and skipped on resume
    skipped: int = 0                   # outside the start/stop/GTID selection
    ddl: int = 0
    row_events: int = 0
    bytes_read: int = 0
    elapsed_s: float = 0.0
    last_applied: str | None = None    # file:end position of the last transaction applied
    last_gtid: str | None = None
    stop_reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    run_id: int | None = None
    resumed_from: str | None = None
    retries: int = 0                   # groups retried after a deadlock, lock wait or lost connection
    busy_s: float = 0.0                # worker-seconds spent applying
    apply_s: float = 0.0               # wall time since the workers started (after reading ahead, connecting)
    workers: int = 0
    workers_busy: int = 0              # applying a group right now
    bytes_done: int = 0                # binlog bytes up to the low-water mark, of bytes_total
    bytes_total: int = 0
    low_water: str | None = None       # everything up to here is applied (the resume point)
    source_time: int | None = None     # source commit time (epoch s) of the newest applied transaction
    worker_states: list[str] = field(default_factory=list)   # one line per worker

    def add_warning(self, message: str) -> None:
        """A warning the run gave, listed again in the summary."""
        self.warnings.append(message)

    def note_stop_reason(self, reason: str | None) -> None:
        """Why the run stopped, unless it already says why."""
        self.stop_reason = self.stop_reason or reason

    def merge_round(self, other: Summary) -> None:
        """Add one replay round of a run made of rounds (`replay --follow`): counts add up, the latest
        round says what was skipped and which run it was, the first what it resumed from."""
        self.applied += other.applied
        self.ddl += other.ddl
        self.row_events += other.row_events
        self.skipped = other.skipped
        self.already_applied = self.already_applied or other.already_applied
        self.last_applied = other.last_applied or self.last_applied
        self.last_gtid = other.last_gtid or self.last_gtid
        self.run_id = other.run_id
        self.warnings.extend(other.warnings)
        self.resumed_from = self.resumed_from or other.resumed_from

    def end(self, outcome: str, elapsed_s: float) -> None:
        """How the run ended, and how long it took."""
        self.outcome = outcome
        self.elapsed_s = elapsed_s

    @property
    def rate(self) -> float:
        return self.applied / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def parallelism(self) -> float:
        """How many workers were applying at once on average: the speed-up over applying the
        same groups one after another on one connection."""
        return self.busy_s / self.apply_s if self.apply_s > 0 else 0.0


def _source_time(ts: int | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else None


class Reporter:
    """Base reporter: logs warnings; subclasses show progress."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()

    def start(self, total_bytes: int, total_transactions: int | None) -> None:
        pass

    def update(self, summary: Summary, position: str) -> None:
        pass

    def warn(self, message: str, summary: Summary | None = None) -> None:
        if summary is not None:
            summary.add_warning(message)
        log.warning(message)

    def fail(self, summary: Summary) -> None:
        """The run stopped with an error (printed by the CLI as one line): nothing more to show."""

    def finish(self, summary: Summary) -> None:
        s = summary
        self.stream.write(
            f"binreplay: {s.outcome}: {s.applied} transactions applied ({s.ddl} DDL, {s.row_events} row events)"
            f"{f', {s.already_applied} already applied' if s.already_applied else ''}"
            f"{f', {s.skipped} outside the selection' if s.skipped else ''}"
            f" in {s.elapsed_s:.1f}s ({s.rate:.0f} trx/s)"
            f"{f', {s.retries} retries' if s.retries else ''}"
            f"{f'; {s.workers} workers, parallelism {s.parallelism:.1f}x' if s.workers > 1 else ''}"
            f"{f'; last applied {s.last_applied}' if s.last_applied else ''}"
            f"{f' ({s.last_gtid})' if s.last_gtid else ''}"
            f"{f'; {s.stop_reason}' if s.stop_reason else ''}\n")
        self.stream.flush()


class BarReporter(Reporter):
    def __init__(self, stream: TextIO = sys.stderr, *, per_worker: bool = False) -> None:
        super().__init__(stream)
        self.per_worker = per_worker          # -v: one status line per worker under the bar
        self.worker_lines: list = []

    def start(self, total_bytes: int, total_transactions: int | None) -> None:
        from tqdm import tqdm

        # Over binlog bytes (all files): transactions vary too much in size for an honest ETA.
        self.bar = tqdm(total=total_bytes or None, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream,
                        dynamic_ncols=True, desc="replay", smoothing=0.1, mininterval=0.5)

    def update(self, summary: Summary, position: str) -> None:
        self.bar.update(max(0, summary.bytes_done - self.bar.n))
        elapsed = time.monotonic() - self.started
        rate = summary.applied / elapsed if elapsed > 0 else 0.0
        events = summary.row_events / elapsed if elapsed > 0 else 0.0
        parts = [f"{rate:,.0f} trx/s", f"{events:,.0f} row ev/s", position]
        if summary.source_time:
            parts.append(f"src {_source_time(summary.source_time)}")
        if summary.workers > 1:
            parts.append(f"{summary.workers_busy}/{summary.workers} busy")
        if summary.retries:
            parts.append(f"{summary.retries} retries")
        self.bar.set_postfix_str(" | ".join(parts), refresh=False)
        if self.per_worker and summary.workers > 1:
            from tqdm import tqdm

            while len(self.worker_lines) < len(summary.worker_states):
                self.worker_lines.append(tqdm(total=0, file=self.stream, bar_format="{desc}", leave=False,
                                              position=len(self.worker_lines) + 1))
            for line, state in zip(self.worker_lines, summary.worker_states):
                line.set_description_str(f"  {state}", refresh=True)

    def warn(self, message: str, summary: Summary | None = None) -> None:
        if summary is not None:
            summary.add_warning(message)
        if hasattr(self, "bar"):
            self.bar.write(f"warning: {message}", file=self.stream)
        else:
            log.warning(message)

    def _close(self) -> None:
        for line in self.worker_lines:
            line.close()
        self.bar.close()

    def fail(self, summary: Summary) -> None:
        if hasattr(self, "bar"):  # leave the bar where it stopped, so the error line starts clean
            self._close()

    def finish(self, summary: Summary) -> None:
        if hasattr(self, "bar"):
            self.update(summary, summary.last_applied or "")  # the last half second is not shown otherwise
            self._close()
        super().finish(summary)


class JsonReporter(Reporter):
    """One JSON object per line: {"type": "start"|"progress"|"warning"|"summary", ...}."""

    interval = 1.0

    def _emit(self, obj: dict) -> None:
        obj["time"] = round(time.time(), 3)
        self.stream.write(json.dumps(obj, sort_keys=True) + "\n")
        self.stream.flush()

    def start(self, total_bytes: int, total_transactions: int | None) -> None:
        self.total_bytes = total_bytes
        self.total = total_transactions
        self.last = 0.0
        self._emit({"type": "start", "total_bytes": total_bytes, "total_transactions": total_transactions})

    def update(self, summary: Summary, position: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.started
        done = summary.applied + summary.already_applied + summary.skipped
        rate = summary.applied / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if self.total and rate > 0 else None
        self._emit({"type": "progress", "transactions_done": done, "transactions_total": self.total,
                    "applied": summary.applied, "position": position, "elapsed_s": round(elapsed, 3),
                    "trx_per_s": round(rate, 1), "eta_s": round(eta, 1) if eta is not None else None,
                    "low_water": summary.low_water, "bytes_done": summary.bytes_done,
                    "bytes_total": summary.bytes_total, "row_events": summary.row_events,
                    "row_events_per_s": round(summary.row_events / elapsed, 1) if elapsed > 0 else 0.0,
                    "source_time": _source_time(summary.source_time), "workers": summary.workers,
                    "workers_busy": summary.workers_busy, "retries": summary.retries, "ddl": summary.ddl})

    def warn(self, message: str, summary: Summary | None = None) -> None:
        if summary is not None:
            summary.add_warning(message)
        self._emit({"type": "warning", "message": message})

    def fail(self, summary: Summary) -> None:
        self.finish(summary)  # a summary record with its outcome: scripts need it most when it fails

    def finish(self, summary: Summary) -> None:
        d = asdict(summary)
        d["trx_per_s"] = round(summary.rate, 1)
        d["parallelism"] = round(summary.parallelism, 2)
        d["source_time"] = _source_time(summary.source_time)
        self._emit({"type": "summary", **d})


class TeeReporter(Reporter):
    """The display the user chose, plus JSON lines to a file (--progress-file) for a runbook to tail."""

    def __init__(self, display: Reporter, json_lines: JsonReporter) -> None:
        super().__init__(display.stream)
        self.display, self.json_lines = display, json_lines

    def start(self, total_bytes: int, total_transactions: int | None) -> None:
        self.display.start(total_bytes, total_transactions)
        self.json_lines.start(total_bytes, total_transactions)

    def update(self, summary: Summary, position: str) -> None:
        self.display.update(summary, position)
        self.json_lines.update(summary, position)

    def warn(self, message: str, summary: Summary | None = None) -> None:
        self.display.warn(message, summary)
        self.json_lines.warn(message)

    def fail(self, summary: Summary) -> None:
        self.display.fail(summary)
        self.json_lines.fail(summary)
        self.json_lines.stream.close()

    def finish(self, summary: Summary) -> None:
        self.display.finish(summary)
        self.json_lines.finish(summary)
        self.json_lines.stream.close()


def make_reporter(mode: str, *, per_worker: bool = False, json_file: str | None = None) -> Reporter:
    display = _display(mode, per_worker)
    if json_file:
        try:
            stream = open(json_file, "a", encoding="utf-8")  # noqa: SIM115 - TeeReporter.finish closes it
        except OSError as exc:
            raise UsageError(f"--progress-file {json_file}: {exc.strerror}") from None
        return TeeReporter(display, JsonReporter(stream))
    return display


def _display(mode: str, per_worker: bool) -> Reporter:
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "plain"
    if mode == "bar":
        return BarReporter(per_worker=per_worker)
    if mode == "json":
        return JsonReporter()
    return Reporter()
