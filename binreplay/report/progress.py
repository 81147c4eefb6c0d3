"""Reporting: what the replay is doing, for a human (tqdm bar) or a machine (JSON lines on stderr)."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict
from typing import TextIO

from binreplay.errors import UsageError
from binreplay.report.summary import RunStart, Summary
from binreplay.times import shown_time

log = logging.getLogger(__name__)


def _source_time(ts: int | None) -> str | None:
    return shown_time(ts) if ts else None   # with its zone: it may be copied into --stop-datetime


class Reporter:
    """Base reporter: logs warnings; subclasses show progress."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()

    def start(self, total_bytes: int, total_transactions: int | None, run: RunStart | None = None) -> None:
        pass

    def update(self, summary: Summary, position: str, force: bool = False) -> None:
        """Show the run's progress (JSON: at most once a second unless `force`)."""

    def retotal(self, total_bytes: int, total_transactions: int | None) -> None:
        """The range grew (the next round of `replay --follow`): what the progress is measured against."""

    def warn(self, message: str, summary: Summary | None = None) -> None:
        if summary is not None:
            summary.add_warning(message)
        log.warning(message)

    def waiting(self, what: str, waited_s: float, timeout_s: float, message: str) -> None:
        """The run is waiting for `what` ("target") to come back, shown again every few seconds."""
        log.warning(message)

    def fail(self, summary: Summary) -> None:
        """The run stopped with an error (printed by the CLI as one line): nothing more to show."""

    def result(self, lines: list[str], record: dict) -> None:
        """The outcome of a command that applies nothing (`replay --check-target`): text lines for a
        person, or (JSON) one record with its "type"."""
        if lines:
            self.stream.write("".join(f"{line}\n" for line in lines))
            self.stream.flush()

    def finish(self, summary: Summary) -> None:
        s = summary
        if s.binlog_files:
            self.stream.write(f"binreplay: binlog files read: {s.binlog_files}\n")
        self.stream.write(
            f"binreplay: {s.outcome}: {s.applied} transactions applied ({s.ddl} DDL, {s.row_events} row events)"
            f"{f', {s.already_applied} already applied' if s.already_applied else ''}"
            f"{f', {s.skipped} outside the selection' if s.skipped else ''}"
            f" in {s.elapsed_s:.1f}s ({s.rate:.0f} trx/s)"
            f"{f', {s.retries} retries' if s.retries else ''}"
            f"{f'; {s.workers} workers, parallelism {s.parallelism:.1f}x' if s.workers > 1 else ''}"
            f"{f'; last applied {s.last_applied}' if s.last_applied else ''}"
            f"{f' ({s.last_gtid})' if s.last_gtid else ''}"
            f"{f'; {s.start_reason}' if s.start_reason else ''}"
            f"{f'; {s.stop_reason}' if s.stop_reason else ''}\n")
        if s.replica is not None and s.outcome == "complete":
            self.stream.write(f"binreplay: to attach the target as a replica of the source: {s.replica.describe()}\n")
        self.stream.flush()


class PlainReporter(Reporter):
    """--progress plain: the start line and the summary, no progress display."""

    def start(self, total_bytes: int, total_transactions: int | None, run: RunStart | None = None) -> None:
        if run is not None:
            self.stream.write(run.line() + "\n")
            self.stream.flush()


class BarReporter(Reporter):
    def __init__(self, stream: TextIO = sys.stderr, *, per_worker: bool = False) -> None:
        super().__init__(stream)
        self.per_worker = per_worker          # -v: one status line per worker under the bar
        self.worker_lines: list = []

    def start(self, total_bytes: int, total_transactions: int | None, run: RunStart | None = None) -> None:
        from tqdm import tqdm

        if run is not None:
            self.stream.write(run.line() + "\n")
        # Over the selected range's binlog bytes: transactions vary too much in size for an honest ETA.
        # The ETA comes before the postfix, whose fields go most useful first: a narrow terminal cuts the end.
        # The rate is this run's average (smoothing=0): the mark stands still while a large transaction is
        # applied, and a moving average would fall towards 0 B/s (and the ETA grow without bound) meanwhile.
        self.bar = tqdm(total=total_bytes or None, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream,
                        dynamic_ncols=True, desc="replay", smoothing=0, mininterval=0.5,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                   "[{remaining} left, {rate_fmt}{postfix}]")
        self._resumed_at: int | None = None

    def retotal(self, total_bytes: int, total_transactions: int | None) -> None:
        self.bar.total = total_bytes or None

    def update(self, summary: Summary, position: str, force: bool = False) -> None:
        if self._resumed_at is None:
            # A resumed run starts where earlier runs got to: shown as done, not as this run's speed.
            self._resumed_at = self.bar.initial = self.bar.n = self.bar.last_print_n = summary.bytes_done
        self.bar.update(max(0, summary.bytes_done - self.bar.n))
        elapsed = time.monotonic() - self.started
        rate = summary.applied / elapsed if elapsed > 0 else 0.0
        events = summary.row_events / elapsed if elapsed > 0 else 0.0
        parts = [f"src {_source_time(summary.source_time)}"] if summary.source_time else []
        parts.append(f"{rate:,.0f} trx/s")
        if summary.workers > 1:
            parts.append(f"{summary.workers_busy}/{summary.workers} busy")
        if summary.retries:
            parts.append(f"{summary.retries} retries")
        parts += [f"{events:,.0f} row ev/s", position]
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

    def waiting(self, what: str, waited_s: float, timeout_s: float, message: str) -> None:
        if hasattr(self, "bar"):
            self.bar.write(f"waiting: {message}", file=self.stream)
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
    """One JSON object per line: {"type": "start"|"progress"|"warning"|"waiting"|"summary", ...}."""

    interval = 1.0

    def _emit(self, obj: dict) -> None:
        obj["time"] = round(time.time(), 3)
        self.stream.write(json.dumps(obj, sort_keys=True) + "\n")
        self.stream.flush()

    def start(self, total_bytes: int, total_transactions: int | None, run: RunStart | None = None) -> None:
        self.total_bytes = total_bytes
        self.total = total_transactions
        self.last = 0.0
        self.done_at_start: int | None = None   # what earlier runs did: the ETA counts this run's pace only
        self._emit({"type": "start", "total_bytes": total_bytes, "total_transactions": total_transactions,
                    **(asdict(run) if run is not None else {})})

    def retotal(self, total_bytes: int, total_transactions: int | None) -> None:
        self.total_bytes, self.total = total_bytes, total_transactions

    def update(self, summary: Summary, position: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.started
        done = summary.transactions_done   # like bytes_done: the prefix up to the mark, earlier runs included
        rate = summary.applied / elapsed if elapsed > 0 else 0.0
        if self.done_at_start is None:
            self.done_at_start = done
        pace = (done - self.done_at_start) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / pace if self.total and pace > 0 else None
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

    def waiting(self, what: str, waited_s: float, timeout_s: float, message: str) -> None:
        self._emit({"type": "waiting", "for": what, "waited_s": round(waited_s, 1), "timeout_s": timeout_s,
                    "message": message})

    def fail(self, summary: Summary) -> None:
        self.finish(summary)  # a summary record with its outcome: scripts need it most when it fails

    def result(self, lines: list[str], record: dict) -> None:
        self._emit(dict(record))

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

    def start(self, total_bytes: int, total_transactions: int | None, run: RunStart | None = None) -> None:
        self.display.start(total_bytes, total_transactions, run)
        self.json_lines.start(total_bytes, total_transactions, run)

    def retotal(self, total_bytes: int, total_transactions: int | None) -> None:
        self.display.retotal(total_bytes, total_transactions)
        self.json_lines.retotal(total_bytes, total_transactions)

    def update(self, summary: Summary, position: str, force: bool = False) -> None:
        self.display.update(summary, position, force)
        self.json_lines.update(summary, position, force)

    def warn(self, message: str, summary: Summary | None = None) -> None:
        self.display.warn(message, summary)
        self.json_lines.warn(message)

    def waiting(self, what: str, waited_s: float, timeout_s: float, message: str) -> None:
        self.display.waiting(what, waited_s, timeout_s, message)
        self.json_lines.waiting(what, waited_s, timeout_s, message)

    def result(self, lines: list[str], record: dict) -> None:
        self.display.result(lines, record)
        self.json_lines.result(lines, record)

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
    return PlainReporter() if mode == "plain" else Reporter()
