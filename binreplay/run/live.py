"""`replay --source-host`: replay binlogs streamed from a live server (a survivor, or a binlog server).

The stream is fetched into a local spool directory (fetch.py: byte-identical files, verified,
resumable), and the spool is replayed by the ordinary file pipeline (coordinator.run_replay). With
--follow the fetch runs on in a thread like a replica's IO thread, and every time complete
transactions arrive another replay round applies them; each round resumes exactly from the
target's checkpoint, so rounds (and reruns after SIGINT/SIGTERM) never skip or repeat one.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from binreplay.errors import BadInputError, Interrupted, StopNotReachedError, UsageError
from binreplay.report.progress import Reporter
from binreplay.report.summary import RunStart, Summary
from binreplay.run.coordinator import run_replay
from binreplay.run.options import ReplayOptions
from binreplay.server.connection import ServerConfig
from binreplay.signals import Background, StopSignals
from binreplay.source.live.fetch import (
    Fetcher,
    FetchOptions,
    FetchStats,
    check_fetch_options,
    fetch_until_signalled,
    random_server_id,
)
from binreplay.source.live.spool import spool_files
from binreplay.source.selection import UnreachedStop, parse_datetime, start_from_backup
from binreplay.times import shown_time

ROUND_INTERVAL_S = 1.0   # with --follow, at most one replay round a second: rounds batch what arrived
SIGNAL_POLL_S = 0.2      # how soon a follow notices SIGINT/SIGTERM while it waits


@dataclass
class LiveSource:
    source: ServerConfig
    start_file: str | None = None       # --source-binlog
    spool_dir: Path | None = None
    follow: bool = False
    server_id: int | None = None
    heartbeat_s: float = 5.0


def default_spool_dir(source: ServerConfig) -> Path:
    """Deterministic, so rerunning the same command finds (and resumes) the same spool."""
    where = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.resolved().where).strip("_")
    return Path.cwd() / "binreplay-spool" / where


def _fetch_options(opts: ReplayOptions, live: LiveSource, spool: Path) -> tuple[FetchOptions, int]:
    if opts.binlogs:
        raise UsageError("give binlog files or --source-host, not both")
    if live.follow and opts.stop_position is not None:
        raise UsageError("--stop-position names a position in the last file, which --follow never reaches; "
                         "use --stop-datetime or --stop-gtid")
    if live.follow and opts.dry_run:
        raise UsageError("--dry-run and --follow exclude each other")
    start_file, start_gtid, exclude = live.start_file, opts.start_gtid, opts.exclude_gtids
    start_pos = opts.start_position or 4
    if opts.from_backup is not None:
        start = start_from_backup(opts.from_backup, other_start=bool(start_file), flags="--source-binlog")
        start_file, start_pos = start.binlog_file, start.position or 4
        start_gtid, exclude = start.mariadb_gtid, start.mysql_gtid_executed
    if start_file is None and not (start_gtid or exclude):
        raise UsageError("with --source-host, give where to start: --source-binlog NAME [--start-position N], "
                         "--from-backup, or --start-gtid / --exclude-gtids")
    if start_file and (start_gtid or exclude):
        start_gtid = exclude = None   # the file starts the fetch; the replay still skips by GTID
    fetch = FetchOptions(
        source=live.source, out=spool, start_file=start_file, start_gtid=start_gtid, exclude_gtids=exclude,
        follow=live.follow, server_id=live.server_id or random_server_id(), heartbeat_s=live.heartbeat_s,
        stop_datetime=parse_datetime(opts.stop_datetime, "--stop-datetime") if opts.stop_datetime else None,
        stop_gtid=opts.stop_gtid)
    check_fetch_options(fetch)
    return fetch, start_pos


def run_live_replay(opts: ReplayOptions, live: LiveSource, reporter: Reporter) -> tuple[Summary, FetchStats]:
    spool = live.spool_dir or default_spool_dir(live.source)
    fetch, start_pos = _fetch_options(opts, live, spool)
    if not live.follow:
        stats = fetch_until_signalled(fetch)   # SIGINT/SIGTERM: the files stay whole, exit 130
        unreached = _unreached_stop(opts, stats)
        summary = run_replay(_on_spool(opts, spool, stats), reporter)
        summary.note_stop_reason(stats.stop_reason)
        if unreached:
            reporter.warn(unreached, summary)
        return summary, stats
    return _Follow(opts, fetch, start_pos, spool, reporter).run()


def _unreached_stop(opts: ReplayOptions, stats: FetchStats) -> str | None:
    """A fetch that read all the source has without reaching --stop-datetime: StopNotReachedError
    before anything is applied, or (--allow-unreached-stop) the warning to give."""
    if opts.stop_datetime is None or stats.stop_reason is not None:
        return None
    unreached = (f"did not reach --stop-datetime {shown_time(parse_datetime(opts.stop_datetime, '--stop-datetime'))}:"
                 " the source's binlogs end before it")
    if opts.unreached_stop is UnreachedStop.ERROR:
        raise StopNotReachedError(unreached + " (accept this with --allow-unreached-stop)")
    return unreached + ": everything up to their end was applied"


def _on_spool(opts: ReplayOptions, spool: Path, stats: FetchStats, **changes) -> ReplayOptions:
    if not stats.files:
        raise BadInputError("nothing was fetched from the source")
    files = spool_files(spool, stats.files[0])
    # The spool ends where the fetch is, not where the source's binlogs end: whether a stop
    # datetime was reached is the fetch's to say (_unreached_stop; --follow runs until it is).
    return dataclasses.replace(opts, binlogs=files, unreached_stop=UnreachedStop.IGNORE, **changes)


class _Follow:
    """A fetch thread streaming like a replica, and replay rounds on the main thread."""

    def __init__(self, opts: ReplayOptions, fetch: FetchOptions, start_pos: int, spool: Path,
                 reporter: Reporter) -> None:
        self.opts = opts
        self.start = (fetch.start_file, start_pos)
        self.fetcher = Fetcher(fetch, on_commit=self._arrived)
        self.spool = spool
        self.reporter = reporter
        self.total = Summary()
        self._new = threading.Event()
        # Only a flag on a signal: the handler runs on the main thread, possibly inside `_new.wait()`
        # holding the Event's lock, so setting `_new` there could deadlock. The loop polls instead.
        self._stop = StopSignals(second_interrupts=False)
        self._fetching = Background(self._fetch, "binreplay-fetch")
        # A stop GTID is only known to be in the files once the fetch reached it: until then a round
        # could not tell "not yet" from "never", so rounds wait for the fetch to end.
        self._rounds_wait_for_end = opts.stop_gtid is not None

    def _arrived(self, _stats: FetchStats) -> None:
        self._new.set()

    def _fetch(self) -> FetchStats:
        try:
            return self.fetcher.run()
        finally:
            self._new.set()

    def run(self) -> tuple[Summary, FetchStats]:
        t0 = time.monotonic()
        outcome = self.total.outcome   # unchanged if a round fails: its error is what is reported
        try:
            with self._stop:
                self._fetching.start()
                self._rounds()
            outcome = "complete"
        except Interrupted:
            outcome = "interrupted"
            raise
        finally:
            self.fetcher.stop()
            self._fetching.join(timeout=30)
            self.total.end(outcome, time.monotonic() - t0)
        return self.total, self.fetcher.stats

    def _rounds(self) -> None:
        """Replay what arrived, round after round, until a stop point, the fetch's end or a signal."""
        first = True
        while True:
            self._new.wait(timeout=SIGNAL_POLL_S)
            self._raise_if_stopped()
            fetching = self._fetching.alive()
            if not self._new.is_set() or (fetching and self._rounds_wait_for_end):
                continue
            self._new.clear()
            if self._past_start():
                summary = self._round(first, more_to_come=fetching)
                first = False
                if summary.stop_reason is not None:
                    self.total.note_stop_reason(summary.stop_reason)
                    return
            if not fetching:
                self._raise_if_stopped()
                self.total.note_stop_reason(self.fetcher.stats.stop_reason)
                return
            time.sleep(ROUND_INTERVAL_S)

    def _past_start(self) -> bool:
        """A round needs the spool to reach the start position (else it is not a valid start yet)."""
        at = self.fetcher.stats.position
        return at is not None and (at[0] != self.start[0] or at[1] >= self.start[1])

    def _raise_if_stopped(self) -> None:
        self._stop.raise_if_stopped()
        self._fetching.raise_error()

    def _round(self, first: bool, *, more_to_come: bool) -> Summary:
        """One replay of the spool; `more_to_come` (the fetch goes on): a span whose temporary tables are
        still open at the spool's end is left to the next round, which reads it from its CREATE (a round's
        sessions end with it, and the tables with them)."""
        opts = _on_spool(self.opts, self.spool, self.fetcher.stats, preflight=self.opts.preflight and first)
        reporter = _RoundReporter(self.reporter, first, self.total)
        summary = run_replay(opts, reporter, more_to_come=more_to_come)
        if summary.applied:
            # What the round applied is shown when it is done: the follow may then wait a long time.
            self.reporter.update(reporter.as_follow(summary), summary.last_applied or "", force=True)
        self.total.merge_round(summary)
        return summary


class _RoundReporter(Reporter):
    """Passes one follow round's progress on as the follow's: counts include the rounds before
    (`so_far`), the range grows with what arrived; says "resuming" only once, not every round."""

    def __init__(self, inner: Reporter, first: bool, so_far: Summary) -> None:
        super().__init__(inner.stream)
        self.inner = inner
        self.first = first
        self.so_far = so_far

    def start(self, total_bytes: int, total_transactions: int | None, run: RunStart | None = None) -> None:
        if self.first:
            self.inner.start(total_bytes, total_transactions, run)
        else:
            self.inner.retotal(total_bytes, total_transactions)

    def update(self, summary: Summary, position: str, force: bool = False) -> None:
        self.inner.update(self.as_follow(summary), position, force)

    def as_follow(self, summary: Summary) -> Summary:
        """This round's progress, counted since the follow began."""
        before = self.so_far
        return dataclasses.replace(summary, applied=before.applied + summary.applied, ddl=before.ddl + summary.ddl,
                                   row_events=before.row_events + summary.row_events)

    def fail(self, summary: Summary) -> None:
        self.inner.fail(summary)

    def warn(self, message: str, summary: Summary | None = None) -> None:
        if self.first or not message.startswith("resuming run"):
            self.inner.warn(message, summary)
