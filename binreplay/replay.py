"""The replay pipeline: read -> select -> (schedule) -> apply -> checkpoint, with reporting.

The scheduler and worker pool arrive with the parallel issue; today transactions are
applied in source order over one connection, through the same Applier a worker uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from binreplay.applier import Applier
from binreplay.backup_meta import read_backup_coordinates
from binreplay.binlog.framing import BinlogFile
from binreplay.bounds import Bounds, Selector, Verdict, parse_datetime, validate
from binreplay.checkpoint import ProgressStore
from binreplay.errors import BadInputError, Interrupted, UnsupportedError, UsageError
from binreplay.gtid import MariadbGtidBounds, MysqlGtidSet, parse_mariadb_gtid_list
from binreplay.model import TrxKind
from binreplay.progress import Reporter, Summary
from binreplay.reader import BinlogReader
from binreplay.target import (EngineWatch, TargetConfig, check_privilege, connect, load_collations,
                              server_info)
from binreplay.statements import binlog_statement

log = logging.getLogger(__name__)

# How often the low-water mark is advanced (the env var is for tests that crash inside it).
CHECKPOINT_INTERVAL_S = float(os.environ.get("BINREPLAY_CHECKPOINT_INTERVAL", "1.0"))


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
    workers: int = 1
    progress_schema: str = "binreplay"
    preflight: bool = True

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
        }


def _bounds(opts: ReplayOptions) -> tuple[Bounds, list[Path]]:
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
    _check_end(selector, bounds, reader)
    return selected, {"kinds": kinds, "has_payload": has_payload, "stats": reader.stats,
                      "stop_reason": selector.stop_reason}


def _check_end(selector: Selector, bounds: Bounds, reader: BinlogReader) -> None:
    problems = selector.problems_at_end()
    last = reader.files[-1]
    if (selector.stop_reason is None and bounds.stop_position is not None and last.tail is not None
            and bounds.stop_position > last.tail.clean_end):
        problems.append(f"--stop-position {bounds.stop_position} is beyond the end of {last.name} "
                        f"(it ends at {last.tail.clean_end})")
    if problems:
        raise BadInputError("; ".join(problems))


def run_replay(opts: ReplayOptions, reporter: Reporter) -> Summary:
    summary = Summary()
    t0 = time.monotonic()
    bounds, files = _bounds(opts)
    total = None
    if opts.preflight or opts.dry_run:
        total, scan = _scan(bounds, files, reporter, summary)
        summary.bytes_read = scan["stats"].bytes
        if opts.dry_run:
            summary.outcome = "dry-run"
            summary.skipped = scan["stats"].transactions - total
            summary.applied = 0
            summary.stop_reason = scan["stop_reason"]
            summary.elapsed_s = time.monotonic() - t0
            reporter.stream.write(f"binreplay: dry run: {total} transactions would be applied "
                                  f"({', '.join(f'{k}: {v}' for k, v in sorted(scan['kinds'].items())) or 'none'})"
                                  f"; {len(files)} file(s), {scan['stats'].events} events\n")
            return summary
        if scan["has_payload"]:
            raise UnsupportedError("the binlogs contain compressed MySQL transactions (TRANSACTION_PAYLOAD); "
                                   "applying them is not supported yet; nothing was applied")
    cfg = opts.target.resolved()
    control = connect(cfg)
    server = server_info(control)
    store = ProgressStore(control, opts.progress_schema)
    store.ensure_schema()
    store.lock()
    if opts.preserve_gtids and server.log_bin:
        check_privilege(control, "SET SESSION sql_log_bin=0",
                        "BINLOG ADMIN (or SUPER), to keep binreplay's own bookkeeping out of the target's "
                        "binlog with --preserve-gtids")
    args = {**opts.fingerprint_fields(), "binlog_files": [f.name for f in files],
            "stop_position": opts.stop_position, "stop_datetime": opts.stop_datetime, "stop_gtid": opts.stop_gtid}
    fingerprint = hashlib.sha256(json.dumps(opts.fingerprint_fields(), sort_keys=True).encode()).hexdigest()
    resume = store.begin_run(fingerprint, args, [f.name for f in files], restart=opts.restart)
    summary.run_id = resume.run_id
    collations = load_collations(control)
    applier = Applier(cfg, store, server, collations, preserve_gtids=opts.preserve_gtids)
    applier.open()
    _check_apply_privileges(applier, files[bounds.start_file_index], server)

    start_index, start_pos = bounds.start_file_index, bounds.start_position
    if resume.low_water is not None:
        start_index, start_pos = resume.low_water.file_index, resume.low_water.pos
        summary.resumed_from = str(resume.low_water)
        reporter.warn(f"resuming run {resume.run_id} after {resume.low_water}"
                      f" ({len(resume.applied_above)} transactions above it already applied)")
    elif resume.resumed and resume.applied_above:
        reporter.warn(f"resuming run {resume.run_id}: {len(resume.applied_above)} transactions already applied")
    reader = BinlogReader(files, start_file_index=start_index, start_pos=start_pos,
                          on_warning=lambda m: reporter.warn(m, summary))
    selector = Selector(bounds)
    reporter.start(reader.total_bytes, total)
    mark = _LowWaterMark(store, resume.low_water, resume.transactions_before)
    engines = EngineWatch(control)
    try:
        with _StopFlag() as stop:
            for trx in reader.transactions():
                verdict = selector.verdict(trx)
                if verdict is Verdict.STOP:
                    break
                if verdict in (Verdict.SKIP, Verdict.DEFER):
                    summary.skipped += 1
                elif (trx.file_index, trx.end_pos) in resume.applied_above:
                    summary.already_applied += 1
                    selector.after_applied()
                else:
                    for schema, table, engine in engines.non_transactional(trx.tables):
                        reporter.warn(f"table `{schema}`.`{table}` uses {engine}, which cannot roll back: if the "
                                      "replay is interrupted, changes to it may be applied twice", summary)
                    _apply(applier, trx, summary)
                    selector.after_applied()
                # A deferred transaction may be applied by a later run: the mark must not pass it.
                mark.passed(trx, hold=verdict is Verdict.DEFER)
                reporter.update(summary, str(trx.end))
                if stop.signal is not None:
                    raise Interrupted(f"interrupted by signal {stop.signal}; rerun the same command to resume "
                                      f"after {mark.position}")
                if selector.stop_reason is not None:
                    break
            if resume.low_water is None:
                # (After a resume the prefix before the mark is not re-read here; the
                # preflight read validated the stop points over the whole selection.)
                _check_end(selector, bounds, reader)
        summary.stop_reason = selector.stop_reason
        summary.outcome = "complete"
        mark.flush()
        store.finish("complete")
    except KeyboardInterrupt:
        _safe_finish(store, "interrupted", mark, "interrupted")
        raise Interrupted("interrupted; rerun the same command to resume") from None
    except Interrupted as exc:
        _safe_finish(store, "interrupted", mark, str(exc))
        summary.outcome = "interrupted"
        raise
    except Exception as exc:
        _safe_finish(store, "failed", mark, str(exc))
        summary.outcome = "failed"
        raise
    finally:
        summary.elapsed_s = time.monotonic() - t0
        applier.close()
        try:
            control.close()
        except Exception:  # noqa: BLE001
            pass
    return summary


def _check_apply_privileges(applier: Applier, first_file: Path, server) -> None:
    """Fail before applying anything if the user cannot run BINLOG or set the replay session context."""
    fde_event = next(BinlogFile(first_file).events())
    assert applier.conn is not None
    check_privilege(applier.conn, binlog_statement([fde_event.raw]),
                    f"{server.binlog_replay_privilege}, needed to apply row events (BINLOG statements)")
    applier.state.fde_raw = fde_event.raw
    check_privilege(applier.conn, "SET @@session.pseudo_thread_id=@@session.pseudo_thread_id",
                    f"{server.binlog_replay_privilege}, needed to set the session context of replayed statements")


def _apply(applier: Applier, trx, summary: Summary) -> None:
    if trx.from_payload:
        raise UnsupportedError(f"compressed MySQL transaction at {trx.start} cannot be applied yet")
    applier.apply(trx)
    summary.applied += 1
    summary.ddl += trx.kind is TrxKind.DDL
    summary.row_events += sum(1 for e in trx.events if e.type_code in _ROWS)
    summary.last_applied = str(trx.end)
    summary.last_gtid = str(trx.gtid) if trx.gtid is not None else None


class _LowWaterMark:
    """The end of the longest prefix of transactions that are applied or skipped for good.

    Advanced in the target about once a second (the applied rows make every transaction
    exact on their own; the mark only bounds how much a resume has to re-read and skip).
    """

    def __init__(self, store: ProgressStore, start, transactions_before: int) -> None:
        self.store = store
        self.position = start
        self.count = transactions_before
        self.held = False
        self.written = start
        self.last_write = time.monotonic()

    def passed(self, trx, *, hold: bool) -> None:
        self.held |= hold
        if not self.held:
            self.position = trx.end
            self.count += 1
        if time.monotonic() - self.last_write >= CHECKPOINT_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self.last_write = time.monotonic()
        if self.position is not None and self.position != self.written:
            self.store.advance(self.position, self.count)
            self.written = self.position


def _safe_finish(store: ProgressStore, state: str, mark: _LowWaterMark, error: str) -> None:
    """Record where we stopped; the progress rows already make the data side exact."""
    try:
        mark.flush()
        store.finish(state, error[:2000])
    except Exception as exc:  # noqa: BLE001 - the target may be the thing that failed
        log.debug("could not record the stop state: %s", exc)


from binreplay.binlog.constants import ROWS_EVENTS as _ROWS  # noqa: E402
