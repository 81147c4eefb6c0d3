"""The replay pipeline: read -> select -> schedule -> apply (worker pool) -> checkpoint, with reporting.

The coordinator (this module) reads transactions in source order, decides which the
selection applies, computes their conflict keys and submits them to the worker pool,
which applies them concurrently where the scheduler allows. The low-water mark of
everything done is written to the target about once a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from binreplay.apply.applier import Applier
from binreplay.apply.encoders import encoder_factory, statement_builder
from binreplay.apply.workers import WorkerPool
from binreplay.binlog.names import files_used
from binreplay.devtools.faults import crash_point
from binreplay.errors import BinreplayError, Interrupted, SchemaMismatchError, StateConflictError, UnsupportedError
from binreplay.model import BinlogPosition, Transaction, TrxKind
from binreplay.report.progress import Reporter
from binreplay.report.summary import Summary
from binreplay.run.early import EarlyApplied, EarlyApply
from binreplay.run.options import ReplayOptions
from binreplay.run.preflight import (
    check_apply_privileges,
    may_set_pseudo_thread,
    past_stop_error,
    survey,
    validate_input,
)
from binreplay.run.replica_position import FileGtids, replica_position
from binreplay.run.start_line import check_not_same_server, run_start
from binreplay.run.table_check import TargetTables
from binreplay.schedule.batches import Batch, Batcher
from binreplay.schedule.dependencies import EVERYTHING, Dependencies, KeyPayoff
from binreplay.schedule.keys import table_keys
from binreplay.schedule.limits import BatchLimits
from binreplay.schedule.partition import Partitioner
from binreplay.schedule.scheduler import KeySet
from binreplay.schedule.temporary import TemporaryTables
from binreplay.server.connection import check_privilege, load_collations, max_allowed_packet, server_info
from binreplay.server.reconnect import OutageNotice, Reconnector
from binreplay.signals import StopSignals
from binreplay.source.reader import BinlogReader
from binreplay.source.selection import Bounds, Selector, Verdict, check_end, resolve_bounds, selected
from binreplay.source.validated import ValidatedRead
from binreplay.state.control import ControlSession
from binreplay.state.position import PositionTracker

if TYPE_CHECKING:
    from binreplay.apply.sql_rows import TriggerWatch

log = logging.getLogger(__name__)

# How often the low-water mark is advanced (the env var is for tests that crash inside it).
CHECKPOINT_INTERVAL_S = float(os.environ.get("BINREPLAY_CHECKPOINT_INTERVAL", "1.0"))


def run_replay(opts: ReplayOptions, reporter: Reporter, *, more_to_come: bool = False) -> Summary:
    """`more_to_come`: a --follow round that is not the run's last (the input goes on in the next)."""
    summary = Summary()
    t0 = time.monotonic()
    files = list(opts.binlogs)
    bounds = resolve_bounds(files, opts.selection())
    summary.binlog_files = files_used(files[bounds.start_file_index:])
    total, stopped_at, stop_reason = None, None, None
    if opts.dry_run:
        found = survey(bounds, files, reporter, summary)
        summary.bytes_read = found.stats.bytes
        summary.outcome = "dry-run"
        summary.skipped = found.stats.transactions - found.selected
        summary.stop_reason, summary.start_reason = found.stop_reason, found.start_reason
        for warning in found.end_warnings:
            reporter.warn(warning, summary)
        summary.elapsed_s = time.monotonic() - t0
        reporter.stream.write(f"binreplay: dry run: {found.selected} transactions would be applied "
                              f"({', '.join(f'{k}: {v}' for k, v in sorted(found.kinds.items())) or 'none'})"
                              f"; {len(files)} file(s), {found.stats.events} events\n")
        return summary
    run = _Run(opts, bounds, files, reporter, summary)
    early: EarlyApply | None = None
    if opts.preflight:
        # A fresh run applies while the input is validated, committing only once it is accepted (run/early.py).
        early = run.start_early() if not more_to_come else None
        try:
            found, run.validated = validate_input(bounds, files, reporter, summary,
                                                  compressed_ok=opts.apply_mode == "sql",
                                                  on_selected=early.offer if early is not None else None)
        except BaseException as exc:
            if early is not None:
                run.refused(early, exc)
            raise
        total, stopped_at, stop_reason = found.in_range, found.stopped_at, found.stop_reason
    try:
        if early is None:
            run.prepare_target(stopped_at, stop_reason)
        done_early = early.finish() if early is not None else None
        run.replay(total, stopped_at, stop_reason, more_to_come=more_to_come, early=done_early,
                   start_reason=found.start_reason if done_early is not None else None)
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


class _ValidateFirst(Exception):
    """The target has a run to resume or replace: that is decided, as always, after the validation
    read (whether it goes past the stop point is known only then), so there is no early apply."""


class _Run:
    """One replay against the target: prepare, stream transactions into the pool, checkpoint."""

    def __init__(self, opts: ReplayOptions, bounds: Bounds, files: list[Path], reporter: Reporter,
                 summary: Summary) -> None:
        self.opts = opts
        self.validated: ValidatedRead | None = None     # what the validation read kept (run_replay sets it)
        self.bounds = bounds
        self.files = files
        self.reporter = reporter
        self.summary = summary
        self._control: ControlSession | None = None   # both set by prepare_target
        self._schema_created = False                   # prepare_target created the progress schema (early apply)
        self._said_shared_id = False
        self._pool: WorkerPool | None = None
        self._last_seq: int | None = None              # newest source transaction applied
        # Builds a pure-row batch's BINLOG statement ahead (--apply binlog), see _submit.
        self.prepare_rows: Callable[[list[Transaction]], bytes | None] | None = None
        self.triggers: TriggerWatch | None = None      # --apply sql: triggers that would fire (prepare_target)

    def prepare_target(self, stop: BinlogPosition | None = None, stop_reason: str | None = None, *,
                       fresh_only: bool = False) -> None:
        """Connect, check and claim the target. A target whose progress records go beyond where this
        selection stops (`stop`) holds transactions it must not have: a replay cannot undo them, so the
        command is refused before it writes anything (the run it would resume keeps its record).
        `fresh_only` (for the early apply, before the validation read): a target with a run of its own
        to resume or replace is refused with _ValidateFirst before its runs are changed (the progress
        tables are created or upgraded first, as for any run)."""
        opts = self.opts
        self.cfg = cfg = opts.target.resolved()
        # One wait for a target that went away, shared by every session of the run.
        self.reconnector = Reconnector(opts.reconnect_timeout, notify=self._show_outage)
        self._control = session = ControlSession(cfg, opts.progress_schema, self.reconnector)
        control = session.conn
        self.server = server = server_info(control)
        shared_id = check_not_same_server(server, self.files[self.bounds.start_file_index],
                                          allow=opts.allow_same_server)
        if shared_id and not self._said_shared_id:   # (prepared again after an early apply's fallback)
            self._said_shared_id = True
            self.reporter.warn(shared_id, self.summary)
        if opts.target_binlog == "off" and server.log_bin:
            # Like `mysqlbinlog -D`: every session of the run (replayed transactions and binreplay's own
            # records, also after a reconnect) stays out of the target's binlog.
            check_privilege(control, "SET SESSION sql_log_bin=0",
                            "BINLOG ADMIN (or SUPER), to keep replayed transactions out of the target's binlog "
                            "(--target-binlog off)")
            self.cfg = cfg = session.cfg = dataclasses.replace(cfg, init_command="SET SESSION sql_log_bin=0")
        self.store = store = session.store
        self._schema_created = fresh_only and not store.exists()
        store.ensure_schema()
        store.lock()
        if opts.preserve_gtids and server.log_bin:
            check_privilege(control, "SET SESSION sql_log_bin=0",
                            "BINLOG ADMIN (or SUPER), to keep binreplay's own bookkeeping out of the target's "
                            "binlog with --preserve-gtids")
        # What identifies the run, and what a resume command needs (status): absolute paths.
        args = {**opts.fingerprint_fields(), "binlog_files": [f.name for f in self.files],
                "binlog_paths": [str(f.absolute()) for f in self.files],
                "from_backup_path": str(opts.from_backup.absolute()) if opts.from_backup else None,
                "stop_position": opts.stop_position, "stop_datetime": opts.stop_datetime,
                "stop_gtid": opts.stop_gtid, **opts.filters.arguments(), "apply_mode": opts.apply_mode,
                "allow_triggers": opts.allow_triggers}
        start = (self.files[self.bounds.start_file_index].name, self.bounds.start_position or 0)
        names = [f.name for f in self.files]
        if fresh_only:
            decision = store.decide_run(opts.fingerprint(), names, restart=opts.restart, start=start,
                                        target_restored=opts.target_restored)
            if decision.resume is not None or decision.abandon is not None:
                raise _ValidateFirst()
        self.resume = store.begin_run(opts.fingerprint(), args, names, restart=opts.restart, start=start,
                                      target_restored=opts.target_restored,
                                      refuse=lambda resume: past_stop_error(resume, stop, stop_reason, names))
        self.arguments = args   # recorded as the run's latest once it goes on (replay)
        # Records that end inside a span whose temporary tables an earlier session held (_dispatch).
        self._temporary_open = store.temporary_open_at(self.resume.run_id) if self.resume.resumed else None
        if self.resume.replaced:
            self.reporter.warn(self.resume.replaced, self.summary)
        self.summary.run_id = self.resume.run_id
        collations = load_collations(control)
        sql_apply = None
        if opts.apply_mode == "sql":
            from binreplay.apply.sql_rows import SqlApplyShared, TriggerWatch  # only this mode needs the decoders

            sql_apply = SqlApplyShared(server.flavor, collations, max_allowed_packet(control))
            self.triggers = TriggerWatch(opts.filters, opts.progress_schema, opts.allow_triggers)
            self._check_triggers(None)
        make_encoder = encoder_factory(opts.apply_mode, server.flavor, collations, sql_apply)
        self.prepare_rows = statement_builder(opts.apply_mode, server.flavor)
        appliers = [Applier(cfg, store, make_encoder, preserve_gtids=opts.preserve_gtids, name=f"worker-{i}",
                            max_retries=opts.retries, reconnector=self.reconnector) for i in range(opts.workers)]
        appliers[0].open()
        if sql_apply is None:
            check_apply_privileges(appliers[0], self.files[self.bounds.start_file_index], server)
        elif not may_set_pseudo_thread(appliers[0]):
            for a in appliers:
                a.encoder.context.pseudo_thread = False
        # The other sessions open when their worker first has a batch (Applier._apply): a run whose
        # batches all conflict needs one, and eight workers then cost no more than one.
        self.tracker = PositionTracker(self.resume.low_water, self.resume.transactions_before)
        grouping = opts.group_commit and not opts.preserve_gtids
        # With --preserve-gtids a commit carries one GTID: spans with temporary tables cannot be one commit.
        limits = BatchLimits(opts.group_max_trx if grouping else 1, opts.group_max_bytes)
        self.batcher = Batcher(limits, temporary=TemporaryTables(), units=not opts.preserve_gtids,
                               warn=lambda message: self.reporter.warn(message, self.summary))
        self._pool = WorkerPool(appliers, on_done=self._on_done, preserve_commit_order=opts.preserve_commit_order)
        self.schema = session.schema
        self.keyed = keyed = opts.dependency != "commit-order" and opts.workers > 1
        self.deps = Dependencies(opts.dependency, self.schema if keyed else None, serial=opts.workers == 1)
        self.key_payoff = KeyPayoff()
        self.tables = TargetTables(self.schema)
        # Pairs of batches cut again by table, to apply side by side (schedule/partition.py): not when
        # the source's commit order is kept, nor with one worker or one transaction per commit.
        self.partitioner = Partitioner(limits, self._table_keys) if (
            keyed and grouping and not opts.preserve_commit_order) else None

    def start_early(self) -> EarlyApply | None:
        """Prepare the target before the validation read, and the early apply that holds what it
        applies meanwhile (run/early.py); None when this run does not apply early (the target is then
        prepared after the read, as without it)."""
        opts = self.opts
        # Not with filters (they would warn twice about the transactions where the early apply stops),
        # nor with a stop GTID (a read from the middle of the selection cannot tell which of its domains
        # reached theirs before).
        if (not opts.early_apply or opts.apply_mode != "binlog" or opts.preserve_gtids or opts.dry_run
                or opts.filters.active or opts.stop_gtid):
            return None
        try:
            self.prepare_target(fresh_only=True)
        except (_ValidateFirst, BinreplayError):
            # A run to resume, or a target that fails its checks: the input is validated first, as
            # without the early apply, and the target prepared (or its error reported) after that.
            self._undo_claim()
            self._pool = self._control = None
            return None
        return EarlyApply(self.pool.appliers[0], self.batcher.limits, self.files, self._accept_early, self._build_rows)

    def _accept_early(self, trx: Transaction) -> Transaction | None:
        """`trx`, if a rollback undoes all of it (EarlyApply.offer); else None. (No filters: the early
        apply is off with them, see start_early.)"""
        if trx.kind is not TrxKind.ROWS and trx.kind is not TrxKind.EMPTY:
            return None
        try:
            trx.writes_non_transactional = self._non_transactional_tables(trx)
        except BinreplayError:
            return None   # (applied from here the usual way, which reports it)
        return None if trx.is_barrier or trx.from_payload else trx

    def _non_transactional_tables(self, trx: Transaction) -> tuple[str, ...]:
        """The table check of `trx` (TargetTables), asking the target only for tables not checked yet."""
        known = self.tables.known(trx)
        return known if known is not None else self.control.run(lambda: self.tables.check(trx))

    def _build_rows(self, trxs: list[Transaction]) -> bytes | None:
        return self.prepare_rows(trxs) if self.prepare_rows is not None else None

    def refused(self, early: EarlyApply, exc: BaseException) -> None:
        """The validation read refused the input (or the run was stopped) during an early apply: nothing
        of it is committed."""
        try:
            early.abandon()
        finally:
            self._undo_claim()

    def _undo_claim(self) -> None:
        """The run began (and maybe the progress schema) before the validation read, for the early apply
        only: as without it, a refused input or a target refused before the read leaves the target's
        records as they were. Then the sessions are closed."""
        with contextlib.suppress(Exception):
            if self._control is not None and self.store.run_id is not None:
                self.control.run(self.store.forget_run)
            if self._control is not None and self._schema_created:
                self.control.run(self.store.drop)
        self.close()

    def _show_outage(self, notice: OutageNotice) -> None:
        """The target went away or came back (called by whichever session met it first)."""
        if notice.state == "waiting":
            self.reporter.waiting("target", notice.waited_s, notice.timeout_s, notice.message)
        else:
            self.reporter.warn(notice.message, self.summary)

    def _on_done(self, batch: Batch) -> None:
        """Called by a worker under the pool's lock once a batch committed."""
        self.tracker.done(batch.seq)
        self._count_applied(batch)

    def _count_early(self, early: EarlyApplied) -> None:
        s = self.summary
        s.applied += early.applied
        s.skipped += early.skipped
        s.row_events += early.row_events
        # (The apply read numbers its transactions from 0 again: any it applies is later than these.)
        self._show_last(early.last)

    def _count_applied(self, batch: Batch) -> None:
        s = self.summary
        for trx in batch.members:
            s.applied += 1
            s.ddl += trx.kind is TrxKind.DDL
            s.row_events += trx.row_events
        last = batch.last
        if self._last_seq is None or last.seq > self._last_seq:
            self._last_seq = last.seq
            self._show_last(last)

    def _show_last(self, trx: Transaction) -> None:
        """The summary's newest applied transaction."""
        s = self.summary
        s.source_time = trx.timestamp
        s.last_applied = str(trx.end)
        s.last_gtid = str(trx.gtid) if trx.gtid is not None else None

    def replay(self, total: int | None, stopped_at: BinlogPosition | None = None, stop_reason: str | None = None,
               *, more_to_come: bool = False, early: EarlyApplied | None = None,
               start_reason: str | None = None) -> None:
        """`total`: transactions in the selected range, `stopped_at`: where it ends (None: the files'
        end or unknown) and why, all from the validation read; `more_to_come`: the input goes on in a next round
        (--follow), so a span with temporary tables still open is left to it, whole (Batcher.flush);
        `early`: what the early apply committed, from the selection's start (run/early.py), and then
        `start_reason`: how the validation read found the start (this read starts after it)."""
        resume, summary, reporter, pool = self.resume, self.summary, self.reporter, self.pool
        if resume.resumed:
            self.control.run(lambda: self.store.record_arguments(self.arguments))
        start_index, start_pos = self.bounds.start_file_index, self.bounds.start_position
        if early is not None:
            # Going on after it, as a resume from there would (its batches' progress rows are committed).
            start_index, start_pos = early.end.file_index, early.end.pos
            self.tracker = PositionTracker(early.end, resume.transactions_before + early.covered)
        elif resume.low_water is not None:
            start_index, start_pos = resume.low_water.file_index, resume.low_water.pos
            summary.resumed_from = str(resume.low_water)
            reporter.warn(f"resuming run {resume.run_id} after {resume.low_water}"
                          f" ({resume.applied_above.transactions} transactions above it already applied)")
        elif resume.resumed and resume.applied_above:
            reporter.warn(f"resuming run {resume.run_id}: {resume.applied_above.transactions} transactions already "
                          "applied")
        reader = BinlogReader(self.files, start_file_index=start_index, start_pos=start_pos,
                              on_warning=lambda m: reporter.warn(m, summary), validated=self.validated)
        selector = Selector(self.bounds, read_from=(start_index, start_pos or 4))
        self._last_seq = None
        if early is not None:
            self._count_early(early)
            # What reading the files this read starts after warned (the validation read was quiet).
            for path in self.files[self.bounds.start_file_index:start_index]:
                entry = self.validated.files.get(path) if self.validated is not None else None
                for message in entry.warnings if entry is not None else ():
                    reporter.warn(message, summary)
        self._file_index: int | None = None
        self._read_from = (start_index, start_pos or 4)
        self._file_gtids: FileGtids | None = None   # the GTIDs of the file being read, for the replica position
        self._next_tick = 0.0
        self._written = resume.low_water
        self._sizes = sizes = reader.file_sizes
        # Progress is measured over the selected range, from its start (not the resume point: a resumed
        # run shows what earlier runs did as done) to its stop point.
        self._from = first, offset = (self.bounds.start_file_index, self.bounds.start_position or 0)
        if stopped_at is not None:
            summary.bytes_total = sum(sizes[first:stopped_at.file_index]) + stopped_at.pos - offset
        else:
            summary.bytes_total = sum(sizes[first:]) - offset
        summary.workers = len(pool.appliers)
        self._apply_started = time.monotonic()
        self._refresh_summary()
        reporter.start(summary.bytes_total, total,
                       run_start(self.cfg, self.server, self.opts, self.bounds, self.files, resume.low_water,
                                 resume.run_id if resume.resumed else None, stopped_at))
        self._apply_started = time.monotonic()
        pool.start()
        try:
            with StopSignals(on_stop=self.reconnector.stop_waiting) as stop:
                self._stop = stop
                # A read that starts after the selection's start (a resume from the mark, or after the
                # early apply) does not know which domains reached their stop GTID before it: it could
                # read on past the stop and apply a later transaction of such a domain (gtid_strict_mode
                # off). It ends where the validation read found that the selection ends.
                ends = (stopped_at.file_index, stopped_at.pos) if stopped_at is not None and (
                    early is not None or resume.low_water is not None) else None
                for trx, verdict in selected(reader.transactions(), selector):
                    if ends is not None and (trx.file_index, trx.start_pos) >= ends:
                        selector.stop_reason = selector.stop_reason or stop_reason
                        break
                    self._dispatch(trx, verdict)
                    self._tick(str(trx.end))
                self._submit(self.batcher.flush(keep_span=more_to_come and selector.stop_reason is None), last=True)
                pool.drain(on_wait=lambda: self._tick(summary.last_applied or ""))
                # (After a resume or an early apply the prefix before where this read began is not re-read; the
                # preflight read validated the stop points over the whole selection.)
                for warning in check_end(selector, self.bounds, reader,
                                         resumed=resume.low_water is not None or early is not None):
                    reporter.warn(warning, summary)
            summary.stop_reason, summary.start_reason = selector.stop_reason, start_reason or selector.start_reason
            summary.outcome = "complete"
            if self.partitioner is not None:
                log.info("pairs of batches cut by table to apply side by side: %d", self.partitioner.cut)
            self._refresh_summary()
            if summary.stop_reason is None:  # read to the end (events after the last transaction too)
                summary.bytes_done = summary.bytes_total
            self._checkpoint()
            self.control.run(lambda: self.store.finish("complete"))
            self._note_replica_position()
        except KeyboardInterrupt:
            self._stop_safely("interrupted", "interrupted")
            raise Interrupted("interrupted") from None
        except Interrupted as exc:
            summary.outcome = "interrupted"
            self._stop_safely("interrupted", str(exc))
            raise
        except Exception as exc:
            summary.outcome = "failed"
            self._stop_safely("failed", str(exc))
            raise

    def _note_replica_position(self) -> None:
        """Where a replica of the source would continue from the target (said after a complete run)."""
        mark, _count = self.tracker.mark()
        if mark is None:
            return
        try:
            self.summary.replica = replica_position(self.files[mark.file_index], mark, self._file_gtids)
        except BinreplayError as exc:   # everything is applied: not a reason to fail the run
            self.reporter.warn(f"the replica position at {mark} could not be read: {exc}", self.summary)

    def _dispatch(self, trx: Transaction, verdict: Verdict) -> None:
        summary = self.summary
        gtids = self._file_gtids
        if gtids is None or gtids.file_index != trx.file_index:
            first, pos = self._read_from
            self._file_gtids = gtids = FileGtids(trx.file_index, pos if trx.file_index == first else 4,
                                                 self.files[trx.file_index])
        gtids.add(trx)
        apply = verdict is Verdict.APPLY and not self.resume.applied_above.covers(trx)
        if verdict is Verdict.APPLY and not apply:
            summary.already_applied += 1
        elif not apply:
            summary.skipped += 1
        keys, after = None, None
        if apply and self._temporary_open is not None:
            self._refuse_inside_span(trx)
        if apply:
            trx, keys, after = self._prepare(trx)
        # A deferred transaction may be applied by a later run: the mark must not pass it.
        self._submit(self.batcher.add(trx, apply=apply, hold=verdict is Verdict.DEFER, keys=keys, after=after))

    def _refuse_inside_span(self, trx: Transaction) -> None:
        """The run's records end where temporary tables a cut span opened were still open (in a session
        of the process that recorded them): applying on without them would fail or write base tables of
        the same names. Refused before anything is applied, unless the source restarted since then."""
        assert self._temporary_open is not None
        file_index, ends, span = self._temporary_open
        if trx.file_index > file_index and trx.fde.create_timestamp:
            self._temporary_open = None   # the source restarted since: those tables went with it
            return
        raise StateConflictError(
            f"the target's progress records end at {ends}, inside a span of the source where temporary tables "
            f"opened at {span} are open (it could not be applied as one commit), and this process does not have "
            "them: resuming there would apply the rest of the span without them; restore the backup and replay "
            "again, or restore it and rerun with --restart --target-restored")

    def _prepare(self, trx: Transaction) -> tuple[Transaction, KeySet, int | None]:
        """A transaction to apply: filtered, checked against the target's tables, keyed."""
        summary = self.summary
        trx = self.opts.filters.apply(trx, warn=lambda m: self.reporter.warn(m, summary))
        if trx.from_payload and self.opts.apply_mode != "sql":
            # Its inner events would have to be re-framed as uncompressed events for BINLOG; --apply sql
            # turns them into SQL like any other row events. (The preflight read refuses them up front.)
            raise UnsupportedError(f"compressed MySQL transaction (TRANSACTION_PAYLOAD) at {trx.start} cannot be "
                                   "applied as BINLOG statements; rerun with --apply sql")
        if trx.file_index != self._file_index:
            if self._file_index is not None:
                crash_point("file-rotation")
            self._file_index = trx.file_index
        try:
            trx.writes_non_transactional = self._non_transactional_tables(trx)
        except SchemaMismatchError:
            # Leave the target exactly before this transaction: everything earlier applied and recorded.
            self._submit(self.batcher.flush(), last=True)
            self.pool.drain(on_wait=lambda: self._tick(str(trx.start)))
            raise
        for table, engine in self.tables.first_named(trx.writes_non_transactional):
            self.reporter.warn(f"table {table} uses {engine}, which cannot roll back: transactions writing it are "
                               "applied alone and not retried, and if the replay is interrupted, changes to it may "
                               "be applied twice", summary)
        if not self.keyed:
            keys, after = self.deps.of(trx)
        elif self._keys_pay():
            # Row keys may load table definitions on the control connection.
            keys, after = self.control.run(lambda: self.deps.of(trx))
        else:
            keys, after = self.deps.unkeyed(trx)
        return trx, keys, after

    def _table_keys(self, trx: Transaction) -> frozenset:
        """A transaction's table keys (the table check loaded its tables' definitions already)."""
        return self.control.run(lambda: table_keys(trx, self.schema))

    def _keys_pay(self) -> bool:
        """Row keys cost the coordinator a Python step per row, more than reading. They pay when
        batches wait for a free worker (the coordinator is ahead: keys let waiting batches run side
        by side), not when the workers wait for the coordinator: keys would slow it further. Then the
        batch goes unkeyed, applied after everything before it and before everything after it."""
        open_batch = self.batcher.open_batch
        if open_batch is not None and open_batch.keys.get(EVERYTHING):
            return False   # unkeyed already: its other members' keys would change nothing
        return self.pool.backlog() > 0 and not self.key_payoff.paused

    def _submit(self, batches: list[Batch], *, last: bool = False) -> None:
        """Hand closed batches to the pool (through the partitioner); `last`: the batcher was flushed,
        so nothing may stay held back for a pair."""
        pool = self.pool
        if self.partitioner is not None:
            batches = self.partitioner.take(batches) + (self.partitioner.flush() if last else [])
        for batch in batches:
            self.tracker.add(batch.seq, batch.end, batch.covered, done=not batch.members, hold=batch.hold)
            if not batch.members:
                continue
            if self.prepare_rows is not None and not batch.barrier:
                # Built here, while the workers wait for the target, not by a worker before it sends.
                batch.statement = self.prepare_rows(batch.members)
            pool.submit(batch)
            if not batch.barrier:
                self.key_payoff.submitted(batch.keys)
            else:
                # Checks and keys of later transactions must see the schema this barrier leaves.
                pool.drain(on_wait=functools.partial(self._tick, str(batch.start)))
                if any(trx.may_change_definitions for trx in batch.members):
                    self.schema.invalidate()   # (CREATE OR REPLACE TABLE ... SELECT is no DDL-kind transaction)
                if any(trx.journaled for trx in batch.members):   # DDL (which alone makes or moves triggers)
                    self._check_triggers(str(batch.members[0].start))

    def _check_triggers(self, after: str | None) -> None:
        """--apply sql: refuse triggers on written tables, at the start and after each DDL (`after`:
        where), before anything later is applied; with --allow-triggers, warn (sql_rows.TriggerWatch)."""
        watch = self.triggers
        if watch is not None:
            for warning in self.control.run(lambda: watch.check(self.control.conn, after)):
                self.reporter.warn(warning, self.summary)

    def _tick(self, position: str) -> None:
        """Progress display, checkpoint, and signals: called often, does work about once a second."""
        self._stop.raise_if_stopped()
        now = time.monotonic()
        if now >= self._next_tick:
            self._next_tick = now + min(CHECKPOINT_INTERVAL_S, 0.5)
            self._refresh_summary()
            self.reporter.update(self.summary, position)
            self._checkpoint()

    def _refresh_summary(self) -> None:
        pool, s = self.pool, self.summary
        mark, s.transactions_done = self.tracker.mark()
        s.workers_busy = pool.busy
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
        position, count = self.tracker.mark()
        if position is not None and position != self._written:
            # Idempotent (insert-ignore and prunes), so it is safe to redo after a reconnect.
            self.control.run(lambda: self.store.advance(position, count))
            self._written = position

    def _stop_safely(self, state: str, error: str) -> None:
        """Stop the workers (each finishes its group), then record where we are."""
        try:
            if self._pool is None or self._control is None:
                return   # failed before anything could be applied
            self._pool.stop()
            self._refresh_summary()
            self._checkpoint()
            self.control.run(lambda: self.store.finish(state, error[:2000]))
        except Exception as exc:  # noqa: BLE001 - the target may be the thing that failed
            log.debug("could not record the stop state: %s", exc)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
        if self._control is not None:
            self._control.close()

    @property
    def control(self) -> ControlSession:
        assert self._control is not None, "prepare_target first"
        return self._control

    @property
    def pool(self) -> WorkerPool:
        assert self._pool is not None, "prepare_target first"
        return self._pool

