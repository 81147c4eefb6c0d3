"""Where a replay starts and stops (point-in-time recovery), with mysqlbinlog's meanings.

A replay never starts or stops in the middle of a transaction: one is applied whole or not at
all. Datetime bounds are decided by events, as mysqlbinlog decides them (source/datetime_bounds.py).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from binreplay.binlog.file import FileTail
from binreplay.errors import BadInputError, StopNotReachedError, UsageError
from binreplay.model import BinlogPosition, MariadbGtid, MysqlGtid, Transaction
from binreplay.source.backup_meta import BackupStart, backup_start
from binreplay.source.cut_transaction import kept_by_pipe
from binreplay.source.datetime_bounds import BoundEvent, StopWatch, find_start
from binreplay.source.gtid import MariadbGtidBounds, MysqlGtidSet, parse_mariadb_gtid_list
from binreplay.times import parse_datetime, shown_time

__all__ = ["Bounds", "SelectionArgs", "Selector", "UnreachedStop", "Verdict", "check_end", "parse_datetime",
           "resolve_bounds", "selected", "start_from_backup"]


class Verdict(enum.Enum):
    APPLY = "apply"
    SKIP = "skip"      # outside the selection for good (before the start, excluded GTID)
    DEFER = "defer"    # beyond a stop GTID of its domain: a later run with a later stop may apply it
    STOP = "stop"      # this and everything after it is beyond the stop point


class UnreachedStop(enum.Enum):
    """What a --stop-datetime no event of the binlogs reaches is (mysqlbinlog only warns)."""

    ERROR = "error"     # the default: the replay would not be the one asked for (exit 12)
    WARN = "warn"       # --allow-unreached-stop: everything is applied, and the summary warns
    IGNORE = "ignore"   # a live source's spool: the fetch, not the spool's end, says whether it was reached


@dataclass
class Bounds:
    start_file_index: int = 0
    start_position: int | None = None
    stop_file_index: int | None = None      # the last file (where --stop-position applies)
    stop_position: int | None = None
    start_datetime: int | None = None
    stop_datetime: int | None = None
    mariadb: MariadbGtidBounds | None = None
    include_gtids: MysqlGtidSet | None = None
    exclude_gtids: MysqlGtidSet | None = None
    paths: list[Path] = field(default_factory=list)   # the binlog files (datetime bounds read their events)
    start_event: BoundEvent | None = None   # the event that decides --start-datetime (None: not in the files)
    unreached_stop: UnreachedStop = UnreachedStop.ERROR


def _at(event: BoundEvent) -> tuple[int, int]:
    return event.at.file_index, event.at.pos


def _trx_label(trx: Transaction) -> str:
    return f"the transaction at {trx.start}" + (f" (GTID {trx.gtid})" if trx.gtid is not None else "")


@dataclass
class Selector:
    """Decides, transaction by transaction, what a replay applies. `read_from` is where the read
    starts (file index, position), when not at the bounds' start (a resumed run)."""

    bounds: Bounds
    read_from: tuple[int, int] | None = None
    stop_reason: str | None = None
    start_reason: str | None = None            # which event and transaction decided --start-datetime
    stopped_at: BinlogPosition | None = None   # where the selection ends, once a stop point was reached
    _reached_domains: set[int] = field(default_factory=set)
    _started: bool = False                     # --start-datetime is behind us
    _stop_watch: StopWatch | None = None

    def __post_init__(self) -> None:
        b = self.bounds
        if self.read_from is None:
            self.read_from = (b.start_file_index, b.start_position or 4)
        if b.stop_datetime is not None:
            self._stop_watch = StopWatch(b.stop_datetime, b.paths, self.read_from)
        if b.start_datetime is not None:
            self._started = b.start_event is not None and self.read_from > _at(b.start_event)
            if self._started:
                self.start_reason = f"{self.start_event_text()}; this run resumed after it"

    def start_event_text(self) -> str:
        b = self.bounds
        assert b.start_datetime is not None
        head = f"--start-datetime {shown_time(b.start_datetime)}: "
        if b.start_event is None:
            return head + "no event of the binlogs is at or after it"
        return head + f"{b.start_event} is the first event at or after it"

    def _stop_datetime_reached(self, hit: BoundEvent, trx: Transaction | None, *, inside: bool = False) -> None:
        """`trx`: the transaction the stop event is inside of (`inside`) or before (None: after the last one)."""
        assert self.bounds.stop_datetime is not None
        self.stop_reason = (f"reached --stop-datetime {shown_time(self.bounds.stop_datetime)}: {hit} is the first "
                            "event at or after it")
        if trx is None:
            self.stop_reason += ", after the last transaction"
        elif inside:
            self.stop_reason += f"; it is inside {_trx_label(trx)}, which was not applied"
        else:
            self.stop_reason += f"; the replay ends before {_trx_label(trx)}"
        self.stopped_at = trx.start if inside and trx is not None else hit.at

    def verdict(self, trx: Transaction) -> Verdict:
        b = self.bounds
        if self.stop_reason is not None:
            return Verdict.STOP
        if b.stop_position is not None and trx.file_index == b.stop_file_index and trx.end_pos > b.stop_position:
            if trx.start_pos < b.stop_position:
                kept = kept_by_pipe(trx, b.stop_position)
                self.stop_reason = (f"--stop-position {b.stop_position} falls inside the transaction at {trx.start}"
                                    f"-{trx.end_pos}; it was not applied"
                                    + (f" (mariadb-binlog | mariadb would have kept {kept})" if kept else ""))
            else:
                self.stop_reason = f"reached --stop-position {b.stop_position}"
            return Verdict.STOP
        watch = self._stop_watch
        if watch is not None:
            hit = watch.before(trx)
            if hit is not None:
                self._stop_datetime_reached(hit, trx)
                return Verdict.STOP
            hit = watch.inside(trx)
            if hit is not None:
                self._stop_datetime_reached(hit, trx, inside=hit.at.pos != trx.start_pos)
                return Verdict.STOP
        if not self._started and b.start_datetime is not None:
            first = b.start_event
            if first is None or (trx.file_index, trx.end_pos) <= _at(first):
                return Verdict.SKIP
            self._started = True
            inside = (trx.file_index, trx.start_pos) < _at(first)
            self.start_reason = (f"{self.start_event_text()}; the replay starts with {_trx_label(trx)}"
                                 + (", which it falls inside: applied whole" if inside else ""))
        g = trx.gtid
        if b.mariadb is not None and isinstance(g, MariadbGtid):
            if b.mariadb.is_before_start(g):
                return self._after_mariadb(Verdict.SKIP)
            if b.mariadb.is_after_stop(g):
                return self._after_mariadb(Verdict.DEFER)
            if b.mariadb.stop_reached(g):
                self._reached_domains.add(g.domain_id)
            return Verdict.APPLY
        if isinstance(g, MysqlGtid):
            if b.include_gtids is not None and g not in b.include_gtids:
                return Verdict.SKIP
            if b.exclude_gtids is not None and g in b.exclude_gtids:
                return Verdict.SKIP
        return Verdict.APPLY

    def _after_mariadb(self, verdict: Verdict) -> Verdict:
        assert self.bounds.mariadb is not None
        if self.bounds.mariadb.all_stops_reached(self._reached_domains):
            self.stop_reason = "reached --stop-gtid in every domain it names"
            return Verdict.STOP
        return verdict

    def after_applied(self) -> None:
        """Called after each applied transaction: stop as soon as every stop GTID is reached."""
        m = self.bounds.mariadb
        if m is not None and m.all_stops_reached(self._reached_domains) and self.stop_reason is None:
            self.stop_reason = "reached --stop-gtid in every domain it names"

    def read_to_end(self) -> None:
        """The read reached the end of the files: a stop datetime may still be decided by the
        file-level events after the last transaction (a closing ROTATE)."""
        if self.stop_reason is None and self._stop_watch is not None:
            hit = self._stop_watch.at_end()
            if hit is not None:
                self._stop_datetime_reached(hit, None)

    def problems_at_end(self) -> list[str]:
        """Stop points the binlogs never reached: the replay cannot claim to be complete."""
        out = []
        if self.stop_reason is None:
            b = self.bounds
            if b.mariadb is not None and b.mariadb.has_stop:
                missing = b.mariadb.unreached_stops(self._reached_domains)
                if missing:
                    out.append("stop GTID " + ",".join(map(str, missing)) + " is not in the binlogs given")
        return out


def validate(b: Bounds) -> None:
    if b.start_datetime is not None and b.stop_datetime is not None and b.stop_datetime <= b.start_datetime:
        raise UsageError("--stop-datetime must be after --start-datetime")
    if (b.start_position is not None and b.stop_position is not None and b.stop_file_index == b.start_file_index
            and b.stop_position <= b.start_position):
        raise UsageError(f"--stop-position {b.stop_position} is not after --start-position {b.start_position}")
    if b.start_position is not None and b.start_position < 4:
        raise BadInputError(f"--start-position {b.start_position} is before the first event (4)")


@dataclass(frozen=True)
class SelectionArgs:
    """The start/stop flags as the user gave them (replay and plan share them)."""

    start_position: int | None = None
    stop_position: int | None = None
    start_datetime: str | None = None
    stop_datetime: str | None = None
    start_gtid: str | None = None
    stop_gtid: str | None = None
    include_gtids: str | None = None
    exclude_gtids: str | None = None
    from_backup: Path | None = None
    unreached_stop: UnreachedStop = UnreachedStop.ERROR


def start_from_backup(path: Path, *, other_start: bool, flags: str) -> BackupStart:
    """`--from-backup`'s start point, read from the backup's metadata: the one place that resolves
    it (the file pipeline here, the fetch of `replay --source-host` in run/live.py). Another start
    flag next to it (`flags` names them) is a usage error."""
    if other_start:
        raise UsageError(f"--from-backup gives the start point; do not combine it with {flags}")
    return backup_start(path)


def resolve_bounds(files: list[Path], args: SelectionArgs) -> Bounds:
    """The flags (and `--from-backup`'s metadata) turned into bounds over `files`."""
    start_index = 0
    start_pos, start_gtid, exclude = args.start_position, args.start_gtid, args.exclude_gtids
    if args.from_backup is not None:
        start = start_from_backup(args.from_backup, other_start=start_pos is not None or bool(start_gtid or exclude),
                                  flags="--start-position, --start-gtid or --exclude-gtids")
        if start.binlog_file:
            names = [f.name for f in files]
            if start.binlog_file not in names:
                raise BadInputError(f"{args.from_backup}: the backup starts at {start.binlog_file}:{start.position}, "
                                    f"which is not among the binlog files given")
            start_index, start_pos = names.index(start.binlog_file), start.position
        start_gtid, exclude = start.mariadb_gtid, start.mysql_gtid_executed
    b = Bounds(
        paths=list(files),
        unreached_stop=args.unreached_stop,
        start_file_index=start_index,
        start_position=start_pos,
        stop_file_index=len(files) - 1,
        stop_position=args.stop_position,
        start_datetime=parse_datetime(args.start_datetime, "--start-datetime") if args.start_datetime else None,
        stop_datetime=parse_datetime(args.stop_datetime, "--stop-datetime") if args.stop_datetime else None,
        include_gtids=MysqlGtidSet(args.include_gtids) if args.include_gtids else None,
        exclude_gtids=MysqlGtidSet(exclude) if exclude else None,
    )
    if start_gtid or args.stop_gtid:
        b.mariadb = MariadbGtidBounds(parse_mariadb_gtid_list(start_gtid or ""),
                                      parse_mariadb_gtid_list(args.stop_gtid or ""))
    validate(b)
    if b.start_datetime is not None:
        b.start_event = find_start(files, b.start_file_index, b.start_position, b.start_datetime)
    return b


def selected(transactions: Iterable[Transaction], selector: Selector) -> Iterator[tuple[Transaction, Verdict]]:
    """Every transaction up to the stop point with the selector's verdict on it (never STOP)."""
    for trx in transactions:
        verdict = selector.verdict(trx)
        if verdict is Verdict.STOP:
            selector.stopped_at = selector.stopped_at or trx.start   # nothing from here on is selected
            return
        if verdict is Verdict.APPLY:
            selector.after_applied()
        yield trx, verdict
        if selector.stop_reason is not None:
            selector.stopped_at = trx.end
            return


class _Files(Protocol):
    """What the end checks need of the files read: the last one's name and how it ended."""

    @property
    def last_name(self) -> str: ...

    @property
    def last_tail(self) -> FileTail | None: ...


def check_end(selector: Selector, bounds: Bounds, files: _Files, *, resumed: bool = False) -> list[str]:
    """After reading to the end: stop points the binlogs never reached are bad input; a stop
    datetime no event reached is StopNotReachedError, or (allowed) one of the warnings returned.
    A `resumed` read began at a checkpoint: the stop GTIDs and position reached before it are not
    known to it (the validation read checked them), a stop datetime cannot be before it."""
    selector.read_to_end()
    problems = [] if resumed else selector.problems_at_end()
    if selector.stop_reason is None and not resumed:
        problems += stop_position_beyond_end(bounds, files)
    if problems:
        raise BadInputError("; ".join(problems))
    warnings = []
    if bounds.start_datetime is not None and bounds.start_event is None:
        warnings.append(f"{selector.start_event_text()}: no transaction is selected")
    if bounds.stop_datetime is not None and selector.stop_reason is None:
        unreached = (f"did not reach --stop-datetime {shown_time(bounds.stop_datetime)}: no event of the binlogs "
                     f"(to the end of {files.last_name}) is at or after it")
        if bounds.unreached_stop is UnreachedStop.ERROR:
            raise StopNotReachedError(unreached + " (give the later binlogs too, or accept this with "
                                      "--allow-unreached-stop)")
        if bounds.unreached_stop is UnreachedStop.WARN:
            warnings.append(unreached)
    return warnings


def stop_position_beyond_end(bounds: Bounds, files: _Files) -> list[str]:
    tail = files.last_tail
    if bounds.stop_position is not None and tail is not None and bounds.stop_position > tail.clean_end:
        return [f"--stop-position {bounds.stop_position} is beyond the end of {files.last_name} "
                f"(it ends at {tail.clean_end})"]
    return []
