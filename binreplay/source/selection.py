"""Where a replay starts and stops (point-in-time recovery), with mysqlbinlog's meanings.

Positions and times are compared per transaction, so a replay never starts or stops in
the middle of one: a transaction is applied whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from binreplay.binlog.file import FileTail
from binreplay.errors import BadInputError, UsageError
from binreplay.model import BinlogPosition, MariadbGtid, MysqlGtid, Transaction
from binreplay.source.backup_meta import BackupStart, backup_start
from binreplay.source.gtid import MariadbGtidBounds, MysqlGtidSet, parse_mariadb_gtid_list


class Verdict(enum.Enum):
    APPLY = "apply"
    SKIP = "skip"      # outside the selection for good (before the start, excluded GTID)
    DEFER = "defer"    # beyond a stop GTID of its domain: a later run with a later stop may apply it
    STOP = "stop"      # this and everything after it is beyond the stop point


def parse_datetime(text: str, flag: str) -> int:
    """'YYYY-MM-DD HH:MM:SS' in the local time zone (as mysqlbinlog reads it), or ISO 8601 with an offset."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{flag}: cannot parse {text!r} (expected 'YYYY-MM-DD HH:MM:SS')") from None
    return int(value.timestamp())  # naive values are local time, like mysqlbinlog


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


@dataclass
class Selector:
    """Decides, transaction by transaction, what a replay applies."""

    bounds: Bounds
    stop_reason: str | None = None
    stopped_at: BinlogPosition | None = None   # where the selection ends, once a stop point was reached
    _reached_domains: set[int] = field(default_factory=set)

    def verdict(self, trx: Transaction) -> Verdict:
        b = self.bounds
        if self.stop_reason is not None:
            return Verdict.STOP
        if b.stop_position is not None and trx.file_index == b.stop_file_index and trx.end_pos > b.stop_position:
            if trx.start_pos < b.stop_position:
                self.stop_reason = (f"--stop-position {b.stop_position} falls inside the transaction at {trx.start}"
                                    f"-{trx.end_pos}; it was not applied")
            else:
                self.stop_reason = f"reached --stop-position {b.stop_position}"
            return Verdict.STOP
        if b.stop_datetime is not None and trx.timestamp >= b.stop_datetime:
            self.stop_reason = f"reached --stop-datetime (transaction at {trx.start} is at or after it)"
            return Verdict.STOP
        if b.start_datetime is not None and trx.timestamp < b.start_datetime:
            return Verdict.SKIP
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


def check_end(selector: Selector, bounds: Bounds, files: _Files) -> None:
    """After reading to the end: stop points the binlogs never reached are bad input."""
    problems = selector.problems_at_end()
    if selector.stop_reason is None:
        problems += stop_position_beyond_end(bounds, files)
    if problems:
        raise BadInputError("; ".join(problems))


def stop_position_beyond_end(bounds: Bounds, files: _Files) -> list[str]:
    tail = files.last_tail
    if bounds.stop_position is not None and tail is not None and bounds.stop_position > tail.clean_end:
        return [f"--stop-position {bounds.stop_position} is beyond the end of {files.last_name} "
                f"(it ends at {tail.clean_end})"]
    return []
