"""The replay pipeline: read -> select -> schedule -> apply (worker pool) -> checkpoint, with reporting.

The coordinator (this module) reads transactions in source order, decides which the
selection applies, computes their conflict keys and submits them to the worker pool,
which applies them concurrently where the scheduler allows. The low-water mark of
everything done is written to the target about once a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.apply.applier import Applier
from binreplay.schedule.dependencies import Dependencies
from binreplay.source.backup_meta import read_backup_coordinates
from binreplay.binlog.file import BinlogFile
from binreplay.source.selection import Bounds, Selector, Verdict, parse_datetime, validate
from binreplay.state.store import PositionTracker
from binreplay.state.control import ControlSession
from binreplay.errors import (BadInputError, Interrupted, PrivilegeError, SchemaMismatchError, TargetError,
                              UnsupportedError, UsageError)
from binreplay.source.gtid import MariadbGtidBounds, MysqlGtidSet, parse_mariadb_gtid_list
from binreplay.model import MariadbGtid, TrxKind
from binreplay.report.progress import Reporter, Summary
from binreplay.source.reader import BinlogReader
from binreplay.devtools.faults import crash_point
from binreplay.source.filters import Filters
from binreplay.run.table_check import TargetTables
from binreplay.server.connection import TargetConfig, check_privilege, load_collations, server_info
from binreplay.apply.statements import binlog_statement
from binreplay.apply.workers import GroupLimits, WorkerPool

log = logging.getLogger(__name__)

# How often the low-water mark is advanced (the env var is for tests that crash inside it).
CHECKPOINT_INTERVAL_S = float(os.environ.get("BINREPLAY_CHECKPOINT_INTERVAL", "1.0"))


def default_workers() -> int:
    """One connection per core, at most 8 (measured: more threads than cores only add contention)."""
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class ReplayOptions:
    binlogs: list[Path]
    target: TargetConfig = field(default_factory=TargetConfig)
    start_position: int | None = None
    stop_position: int | None = None
    start_datetime: str | None = None
    stop_datetime: str | None = None
    start_gtid: str | None = None
    stop_gtid: str | None = None
    include_gtids: str | None = None
    exclude_gtids: str | None = None
    from_backup: Path | None = None
    preserve_gtids: bool = False
    dry_run: bool = False
    restart: bool = False
    workers: int = field(default_factory=lambda: default_workers())
    dependency: str = "row"
    group_commit: bool = True
    group_max_trx: int = 100
    group_max_bytes: int = 4 << 20
    preserve_commit_order: bool = False
    retries: int = 10
    progress_schema: str = "binreplay"
    preflight: bool = True
    apply_mode: str = "binlog"               # "binlog" (exact BINLOG statements) or "sql" (sql_apply.py)
    allow_triggers: bool = False             # --apply sql: target triggers would fire on replayed rows
    filters: Filters = field(default_factory=Filters)

    def fingerprint_fields(self) -> dict:
        """What identifies a replay for resuming: where it starts and what it selects.
        Stop bounds are left out on purpose: a rerun may extend a replay to a later stop point."""
        return {
            "start_file": self.binlogs[0].name if self.binlogs else None,
            "start_position": self.start_position, "start_datetime": self.start_datetime,
            "start_gtid": self.start_gtid, "include_gtids": self.include_gtids,
            "exclude_gtids": self.exclude_gtids,
            "from_backup": str(self.from_backup) if self.from_backup else None,
            "preserve_gtids": self.preserve_gtids,
            # What the filters select is part of the replay's identity (only when given: older runs resume).
            **({"filters": repr(self.filters)} if self.filters.active else {}),
        }


def selection_bounds(opts: ReplayOptions) -> tuple[Bounds, list[Path]]:
    files = list(opts.binlogs)
    start_index = 0
    start_pos = opts.start_position
    start_gtid = opts.start_gtid
    exclude = opts.exclude_gtids
    if opts.from_backup is not None:
        if start_pos is not None or start_gtid or exclude:
            raise UsageError("--from-backup gives the start point; do not combine it with --start-position, "
                             "--start-gtid or --exclude-gtids")
        coords = read_backup_coordinates(opts.from_backup)
        if coords.binlog_file and coords.position:
            names = [f.name for f in files]
            if coords.binlog_file not in names:
                raise BadInputError(f"{opts.from_backup}: the backup starts at {coords.binlog_file}:{coords.position}, "
                                    f"which is not among the binlog files given")
            start_index = names.index(coords.binlog_file)
            start_pos = coords.position
        elif coords.mariadb_gtid:
            start_gtid = coords.mariadb_gtid
        elif coords.mysql_gtid_executed:
            exclude = coords.mysql_gtid_executed
        else:
            raise BadInputError(f"{opts.from_backup}: no usable start coordinates in it")
    b = Bounds(
        start_file_index=start_index,
        start_position=start_pos,
        stop_file_index=len(files) - 1,
        stop_position=opts.stop_position,
        start_datetime=parse_datetime(opts.start_datetime, "--start-datetime") if opts.start_datetime else None,
        stop_datetime=parse_datetime(opts.stop_datetime, "--stop-datetime") if opts.stop_datetime else None,
        include_gtids=MysqlGtidSet(opts.include_gtids) if opts.include_gtids else None,
        exclude_gtids=MysqlGtidSet(exclude) if exclude else None,
    )
    if start_gtid or opts.stop_gtid:
        b.mariadb = MariadbGtidBounds(parse_mariadb_gtid_list(start_gtid or ""),
                                      parse_mariadb_gtid_list(opts.stop_gtid or ""))
    validate(b)
    return b, files


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop stops between transactions, checkpointed."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, object] = {}

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _scan(bounds: Bounds, files: list[Path], reporter: Reporter, summary: Summary) -> tuple[int, dict]:
    """Read everything once without touching the target: validates the input up front and counts."""
    reader = BinlogReader(files, start_file_index=bounds.start_file_index, start_pos=bounds.start_position,
                          on_warning=lambda m: reporter.warn(m, summary))
    selector = Selector(bounds)
    selected = 0
    kinds: dict[str, int] = {}
    has_payload = False
    for trx in reader.transactions():
        v = selector.verdict(trx)
        if v is Verdict.STOP:
            break
        if v is Verdict.APPLY:
            selected += 1
            kinds[trx.kind.value] = kinds.get(trx.kind.value, 0) + 1
            has_payload |= trx.from_payload
            selector.after_applied()
    check_end(selector, bounds, reader)
    return selected, {"kinds": kinds, "has_payload": has_payload, "stats": reader.stats,
                      "stop_reason": selector.stop_reason}


def check_end(selector: Selector, bounds: Bounds, reader: BinlogReader) -> None:
    problems = selector.problems_at_end()
    if selector.stop_reason is None:
        problems += _stop_position_beyond_end(bounds, reader)
    if problems:
        raise BadInputError("; ".join(problems))


def _stop_position_beyond_end(bounds: Bounds, reader: BinlogReader) -> list[str]:
    last = reader.files[-1]
    if bounds.stop_position is not None and last.tail is not None and bounds.stop_position > last.tail.clean_end:
        return [f"--stop-position {bounds.stop_position} is beyond the end of {last.name} "
                f"(it ends at {last.tail.clean_end})"]
    return []


def _preflight(bounds: Bounds, files: list[Path], reporter: Reporter, summary: Summary,
               compressed_ok: bool = False) -> int | None:
    """Validate the input before the target is touched, in one fast pass (no grouping): a corrupt,
    truncated or misordered file, a bad start position, an event binreplay refuses, or a stop
    GTID that is not in the files stops the run here, with nothing applied. Returns the number of
    transactions (for the ETA)."""
    # Its warnings (a truncated last file) are left to the applying pass, which says them once.
    reader = BinlogReader(files, start_file_index=bounds.start_file_index, start_pos=bounds.start_position,
                          on_warning=lambda m: None)
    m = bounds.mariadb
    reached: set[int] = set()

    def on_gtid(g) -> None:
        if m is not None and isinstance(g, MariadbGtid) and m.stop_reached(g):
            reached.add(g.domain_id)

    count = reader.validate(on_gtid if m is not None and m.has_stop else None, compressed_ok=compressed_ok)
    if count is None:  # no GTID events to count or check: the full reader does both
        return _scan(bounds, files, reporter, summary)[0]
    problems = []
    if m is not None and m.has_stop and not m.all_stops_reached(reached):
        problems.append("stop GTID " + ",".join(map(str, m.unreached_stops(reached))) + " is not in the binlogs given")
    problems += _stop_position_beyond_end(bounds, reader)
    if problems:
        raise BadInputError("; ".join(problems))
    return count


def run_replay(opts: ReplayOptions, reporter: Reporter) -> Summary:
    summary = Summary()
    t0 = time.monotonic()
    bounds, files = selection_bounds(opts)
    total = None
    if opts.dry_run:
        total, scan = _scan(bounds, files, reporter, summary)
        summary.bytes_read = scan["stats"].bytes
        summary.outcome = "dry-run"
        summary.skipped = scan["stats"].transactions - total
        summary.stop_reason = scan["stop_reason"]
        summary.elapsed_s = time.monotonic() - t0
        reporter.stream.write(f"binreplay: dry run: {total} transactions would be applied "
                              f"({', '.join(f'{k}: {v}' for k, v in sorted(scan['kinds'].items())) or 'none'})"
                              f"; {len(files)} file(s), {scan['stats'].events} events\n")
        return summary
    if opts.preflight:
        total = _preflight(bounds, files, reporter, summary, compressed_ok=opts.apply_mode == "sql")
    run = _Run(opts, bounds, files, reporter, summary)
    try:
        run.prepare_target()
        run.replay(total)
    except BaseException:
        if summary.outcome == "running":
            summary.outcome = "failed"
        summary.elapsed_s = time.monotonic() - t0
        reporter.fail(summary)  # machine-readable outcome; the CLI prints the error line itself
        raise
    finally:
        summary.elapsed_s = time.monotonic() - t0
        run.close()
    return summary


class _Run:
    """One replay against the target: prepare, stream transactions into the pool, checkpoint."""

    def __init__(self, opts: ReplayOptions, bounds: Bounds, files: list[Path], reporter: Reporter,
                 summary: Summary) -> None:
        self.opts = opts
        self.bounds = bounds
        self.files = files
        self.reporter = reporter
        self.summary = summary
        self.control = None
        self.pool: WorkerPool | None = None

    def prepare_target(self) -> None:
        opts = self.opts
        self.cfg = cfg = opts.target.resolved()
        self.control = ControlSession(cfg, opts.progress_schema)
        control = self.control.conn
        self.server = server = server_info(control)
        self.store = store = self.control.store
        store.ensure_schema()
        store.lock()
        if opts.preserve_gtids and server.log_bin:
            check_privilege(control, "SET SESSION sql_log_bin=0",
                            "BINLOG ADMIN (or SUPER), to keep binreplay's own bookkeeping out of the target's "
                            "binlog with --preserve-gtids")
        args = {**opts.fingerprint_fields(), "binlog_files": [f.name for f in self.files],
                "stop_position": opts.stop_position, "stop_datetime": opts.stop_datetime,
                "stop_gtid": opts.stop_gtid, **opts.filters.arguments(), "apply_mode": opts.apply_mode,
                "allow_triggers": opts.allow_triggers}
        fingerprint = hashlib.sha256(json.dumps(opts.fingerprint_fields(), sort_keys=True).encode()).hexdigest()
        self.resume = store.begin_run(fingerprint, args, [f.name for f in self.files], restart=opts.restart)
        self.summary.run_id = self.resume.run_id
        collations = load_collations(control)
        sql_apply = None
        if opts.apply_mode == "sql":
            from binreplay.apply.sql_rows import SqlApplyShared, check_triggers  # only this mode needs the decoders

            sql_apply = SqlApplyShared(server.flavor, collations)
            for table in check_triggers(control, opts.filters, opts.progress_schema, opts.allow_triggers):
                self.reporter.warn(f"table {table} has triggers: they fire on rows replayed with --apply sql",
                                   self.summary)
        appliers = [Applier(cfg, store, server, collations, preserve_gtids=opts.preserve_gtids, name=f"worker-{i}",
                            max_retries=opts.retries, sql_apply=sql_apply) for i in range(opts.workers)]
        appliers[0].open()
        if sql_apply is None:
            _check_apply_privileges(appliers[0], self.files[self.bounds.start_file_index], server)
        elif not _may_set_pseudo_thread(appliers[0]):
            for a in appliers:
                a.builder.pseudo_thread = False
        for a in appliers[1:]:
            a.open()
        self.tracker = PositionTracker(self.resume.low_water)
        self.tracker.count = self.resume.transactions_before
        grouping = opts.group_commit and not opts.preserve_gtids
        limits = GroupLimits(opts.group_max_trx if grouping else 1, opts.group_max_bytes,
                             preserve_commit_order=opts.preserve_commit_order)
        self.pool = WorkerPool(appliers, limits, on_done=self._on_done)
        self.schema = self.control.schema
        self.keyed = keyed = opts.dependency != "commit-order" and opts.workers > 1
        self.deps = Dependencies(opts.dependency, self.schema if keyed else None, serial=opts.workers == 1)
        self.tables = TargetTables(self.schema)

    def _on_done(self, trxs: list) -> None:
        """Called by a worker under the pool's lock once a group committed."""
        s = self.summary
        for trx in trxs:
            self.tracker.done(trx.seq)
            s.applied += 1
            s.ddl += trx.kind is TrxKind.DDL
            s.row_events += sum(1 for e in trx.events if e.type_code in _ROWS)
        last = trxs[-1]
        if self._last_seq is None or last.seq > self._last_seq:
            self._last_seq = last.seq
            s.source_time = last.timestamp
            s.last_applied = str(last.end)
            s.last_gtid = str(last.gtid) if last.gtid is not None else None

    def replay(self, total: int | None) -> None:
        resume, summary, reporter, pool = self.resume, self.summary, self.reporter, self.pool
        assert pool is not None
        start_index, start_pos = self.bounds.start_file_index, self.bounds.start_position
        if resume.low_water is not None:
            start_index, start_pos = resume.low_water.file_index, resume.low_water.pos
            summary.resumed_from = str(resume.low_water)
            reporter.warn(f"resuming run {resume.run_id} after {resume.low_water}"
                          f" ({len(resume.applied_above)} transactions above it already applied)")
        elif resume.resumed and resume.applied_above:
            reporter.warn(f"resuming run {resume.run_id}: {len(resume.applied_above)} transactions already applied")
        reader = BinlogReader(self.files, start_file_index=start_index, start_pos=start_pos,
                              on_warning=lambda m: reporter.warn(m, summary))
        selector = Selector(self.bounds)
        self._last_seq: int | None = None
        self._file_index: int | None = None
        self._next_tick = 0.0
        self._written = resume.low_water
        self._sizes = reader.file_sizes
        self._from = (start_index, start_pos or 0)
        summary.bytes_total = reader.total_bytes
        summary.workers = len(pool.appliers)
        reporter.start(summary.bytes_total, total)
        self._apply_started = time.monotonic()
        pool.start()
        try:
            with _StopFlag() as stop:
                self._stop = stop
                for trx in reader.transactions():
                    verdict = selector.verdict(trx)
                    if verdict is Verdict.STOP:
                        break
                    self._dispatch(trx, verdict, selector)
                    self._tick(str(trx.end))
                    if selector.stop_reason is not None:
                        break
                pool.drain(on_wait=lambda: self._tick(summary.last_applied or ""))
                if resume.low_water is None:
                    # (After a resume the prefix before the mark is not re-read here; the
                    # preflight read validated the stop points over the whole selection.)
                    check_end(selector, self.bounds, reader)
            summary.stop_reason = selector.stop_reason
            summary.outcome = "complete"
            self._refresh_summary()
            if summary.stop_reason is None:  # read to the end (events after the last transaction too)
                summary.bytes_done = summary.bytes_total
            self._checkpoint()
            self.control.run(lambda: self.store.finish("complete"))
        except KeyboardInterrupt:
            self._stop_safely("interrupted", "interrupted")
            raise Interrupted("interrupted; rerun the same command to resume") from None
        except Interrupted as exc:
            summary.outcome = "interrupted"
            self._stop_safely("interrupted", str(exc))
            raise
        except TargetError as exc:
            summary.outcome = "failed"
            self._stop_safely("failed", str(exc))
            if "resume" in str(exc):
                raise
            raise type(exc)(f"{exc}; what was applied is recorded: rerun the same command to resume") from None
        except Exception as exc:
            summary.outcome = "failed"
            self._stop_safely("failed", str(exc))
            raise

    def _dispatch(self, trx, verdict: Verdict, selector: Selector) -> None:
        pool, summary = self.pool, self.summary
        assert pool is not None
        apply = verdict is Verdict.APPLY and (trx.file_index, trx.end_pos) not in self.resume.applied_above
        if verdict is Verdict.APPLY and not apply:
            summary.already_applied += 1
        elif not apply:
            summary.skipped += 1
        with pool.lock:
            # A deferred transaction may be applied by a later run: the mark must not pass it.
            self.tracker.add(trx.seq, trx.end, done=not apply, hold=verdict is Verdict.DEFER)
        if verdict is Verdict.APPLY:
            selector.after_applied()
        if not apply:
            return
        trx = self.opts.filters.apply(trx, warn=lambda m: self.reporter.warn(m, summary))
        if trx.from_payload and self.opts.apply_mode != "sql":
            # Its inner events would have to be re-framed as uncompressed events for BINLOG; --apply sql
            # turns them into SQL like any other row events.
            raise UnsupportedError(f"compressed MySQL transaction (TRANSACTION_PAYLOAD) at {trx.start} cannot be "
                                   "applied as BINLOG statements; rerun with --apply sql")
        if trx.file_index != self._file_index:
            if self._file_index is not None:
                crash_point("file-rotation")
            self._file_index = trx.file_index
        try:
            non_transactional = self.control.run(lambda: self.tables.check(trx))
        except SchemaMismatchError:
            # Leave the target exactly before this transaction: everything earlier applied and recorded.
            pool.drain(on_wait=lambda: self._tick(str(trx.start)))
            raise
        for schema, table, engine in non_transactional:
            self.reporter.warn(f"table `{schema}`.`{table}` uses {engine}, which cannot roll back: if the "
                               "replay is interrupted, changes to it may be applied twice", summary)
        # Row keys may load table definitions on the control connection; the other modes need none.
        keys, after = self.control.run(lambda: self.deps.of(trx)) if self.keyed else self.deps.of(trx)
        pool.submit(trx, keys, after=after)
        if trx.is_barrier:
            # Checks and keys of later transactions must see the schema this barrier leaves.
            pool.drain(on_wait=lambda: self._tick(str(trx.start)))
            if trx.kind is TrxKind.DDL:
                self.schema.invalidate()

    def _tick(self, position: str) -> None:
        """Progress display, checkpoint, and signals: called often, does work about once a second."""
        if self._stop.signal is not None:
            raise Interrupted(f"interrupted by signal {self._stop.signal}; rerun the same command to resume")
        now = time.monotonic()
        if now >= self._next_tick:
            self._next_tick = now + min(CHECKPOINT_INTERVAL_S, 0.5)
            self._refresh_summary()
            self.reporter.update(self.summary, position)
            self._checkpoint()

    def _refresh_summary(self) -> None:
        pool, s = self.pool, self.summary
        assert pool is not None
        with pool.lock:
            mark, s.workers_busy = self.tracker.position, pool.busy
        s.retries, s.busy_s = pool.retries, pool.busy_s
        s.apply_s = time.monotonic() - self._apply_started
        s.worker_states = [f"{a.name}: {a.current} | {a.groups} commits | {a.retries} retries"
                           for a in pool.appliers]
        s.elapsed_s = time.monotonic() - self.reporter.started
        if mark is not None:
            s.low_water = str(mark)
            first, offset = self._from
            if mark.file_index >= first:
                s.bytes_done = sum(self._sizes[first:mark.file_index]) + mark.pos - offset

    def _checkpoint(self) -> None:
        assert self.pool is not None
        with self.pool.lock:
            position, count = self.tracker.position, self.tracker.count
        if position is not None and position != self._written:
            # Idempotent (insert-ignore and prunes), so it is safe to redo after a reconnect.
            self.control.run(lambda: self.store.advance(position, count))
            self._written = position

    def _stop_safely(self, state: str, error: str) -> None:
        """Stop the workers (each finishes its group), then record where we are."""
        try:
            if self.pool is not None:
                self.pool.stop()
                self._refresh_summary()
            self._checkpoint()
            self.control.run(lambda: self.store.finish(state, error[:2000]))
        except Exception as exc:  # noqa: BLE001 - the target may be the thing that failed
            log.debug("could not record the stop state: %s", exc)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        if self.control is not None:
            self.control.close()


def _check_apply_privileges(applier: Applier, first_file: Path, server) -> None:
    """Fail before applying anything if the user cannot run BINLOG or set the replay session context."""
    fde_event = next(BinlogFile(first_file).events())
    assert applier.conn is not None
    check_privilege(applier.conn, binlog_statement([fde_event.raw]),
                    f"{server.binlog_replay_privilege}, needed to apply row events (BINLOG statements)")
    applier.state.fde_raw = fde_event.raw
    check_privilege(applier.conn, "SET @@session.pseudo_thread_id=@@session.pseudo_thread_id",
                    f"{server.binlog_replay_privilege}, needed to set the session context of replayed statements")


def _may_set_pseudo_thread(applier: Applier) -> bool:
    """--apply sql needs no BINLOG privilege; without it, replayed statements run without
    pseudo_thread_id (which only names temporary tables in the target's own binlog)."""
    try:
        check_privilege(applier.conn, "SET @@session.pseudo_thread_id=@@session.pseudo_thread_id", "")
        return True
    except PrivilegeError:
        log.info("the target user may not set pseudo_thread_id; replayed statements run without it")
        return False


from binreplay.binlog.constants import ROWS_EVENTS as _ROWS  # noqa: E402
