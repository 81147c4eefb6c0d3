"""`--start-datetime` and `--stop-datetime` with mysqlbinlog's meaning: the event that decides each.

mysqlbinlog compares the time of every event it reads, not of transactions (checked against
mariadb-binlog 10.11 on binlogs written with chosen `SET TIMESTAMP`s):

- event times are not in commit order: an autocommit statement's events carry the time the
  statement started, a multi-statement transaction's GTID and XID events the time of its COMMIT
  and each statement's events that statement's start; ROTATE, FORMAT_DESCRIPTION, GTID_LIST and
  BINLOG_CHECKPOINT events the time they were written;
- **start**: output begins at the first event at or after the bound that is not a
  FORMAT_DESCRIPTION, and everything after it is printed, whatever its time (an UPDATE that
  started before the bound but committed after a later-stamped event is replayed);
- **stop**: output ends before the first event at or after the bound, of any type: a ROTATE
  between two files, the FORMAT_DESCRIPTION of the next file (or of the first file, even when
  reading starts at `--start-position`), an event inside a transaction. Nothing from it on is
  printed, and a stop never reached is a warning ("Did not reach stop datetime").

binreplay applies whole transactions, so where a bound falls inside one:

- the start's transaction is applied whole (mysqlbinlog would print only its tail, which the
  server applies as a transaction of its own): one of its events is at or after the start, and
  a transaction commits after each of its events, so it is not in a backup of that time;
- the stop's transaction is not applied (mysqlbinlog prints its head and a ROLLBACK).

The start is found up front by a walk over event headers (`find_start`: positions, so a
resumed run, which reads from its checkpoint, starts where the first run did); the stop as the
transactions are read (`StopWatch`: their own events, and the file-level events between them,
read from the files; those gaps are few and small).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog.file import open_regular
from binreplay.model import BinlogPosition, Transaction
from binreplay.times import shown_time

_TIME = struct.Struct("<I")
_TYPE_AND_SIZE = struct.Struct("<B4xI")   # from offset 4 of the 19-byte header


@dataclass(frozen=True)
class BoundEvent:
    """The event that decided a datetime bound (the first at or after it)."""

    at: BinlogPosition
    type_code: int
    timestamp: int

    def __str__(self) -> str:
        return f"the {C.event_name(self.type_code)} event at {self.at} ({shown_time(self.timestamp)})"


def file_events(path: Path, start: int, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(position, type code, timestamp) of the events of one file that begin in [start, end) (end
    None: to the file's end), from their headers alone; `start` is an event boundary. A header that
    does not frame an event ends the walk: reading the file says what is wrong with it."""
    with open_regular(path, "binlog file") as f:
        if f.read(4) != C.MAGIC:
            return
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):   # empty, or cannot be mapped: reading it says why
            return
        with mm:
            size = len(mm)
            stop = size if end is None else min(end, size)
            pos = max(start, 4)
            while pos < stop and pos + C.HEADER_LEN <= size:
                t, ev_size = _TYPE_AND_SIZE.unpack_from(mm, pos + 4)
                if ev_size < C.HEADER_LEN or pos + ev_size > size:
                    return
                yield pos, t, _TIME.unpack_from(mm, pos)[0]
                pos += ev_size


def find_start(paths: list[Path], first_index: int, first_pos: int | None, start: int) -> BoundEvent | None:
    """The first event at or after `start` that is not a FORMAT_DESCRIPTION, reading from
    `first_pos` of file `first_index` (None: not in the files: nothing is after the start)."""
    for index in range(first_index, len(paths)):
        from_pos = (first_pos or 4) if index == first_index else 4
        for pos, t, ts in file_events(paths[index], from_pos):
            if ts >= start and t != C.FORMAT_DESCRIPTION_EVENT:
                return BoundEvent(BinlogPosition(index, paths[index].name, pos), t, ts)
    return None


class StopWatch:
    """Finds the first event at or after `stop` as the transactions of a read go by (in order):
    each transaction's own events, and the file-level events before it since the previous one."""

    def __init__(self, stop: int, paths: list[Path], read_from: tuple[int, int]) -> None:
        self.stop = stop
        self.paths = paths
        self._next = read_from          # (file index, position) of the first event not looked at yet
        self._fde_due = read_from[1] > 4   # a read from a position still compares its file's FORMAT_DESCRIPTION

    def before(self, trx: Transaction) -> BoundEvent | None:
        """The stop event if it is before `trx` (between the previous transaction and it)."""
        return self._gap_until(trx.file_index, trx.start_pos)

    def inside(self, trx: Transaction) -> BoundEvent | None:
        """The stop event if it is one of `trx`'s events; else the watch moves past it."""
        stop, data, base = self.stop, trx.data, trx.base
        for i, span in enumerate(trx.spans):
            ts = _TIME.unpack_from(data, span[1] - base)[0]
            if ts >= stop:
                # (A compressed transaction's events are all inside one event, at its start.)
                pos = (trx.start_pos if trx.from_payload else
                       trx.positions[i] if trx.positions is not None else span[1])
                return BoundEvent(BinlogPosition(trx.file_index, trx.file, pos), span[0], ts)
        self._next = (trx.file_index, trx.end_pos)
        return None

    def at_end(self) -> BoundEvent | None:
        """The stop event if it is after the last transaction (a closing ROTATE, a file with none)."""
        return self._gap_until(len(self.paths), 4)

    def _gap_until(self, file_index: int, pos: int) -> BoundEvent | None:
        """The events from where the watch is up to `pos` of file `file_index` (past the last file:
        to the end of the files)."""
        index, at = self._next
        if (index, at) == (file_index, pos) and not self._fde_due:
            return None      # the common case: the transaction follows the previous one
        hit = None
        if self._fde_due:
            self._fde_due = False
            hit = self._first_at_stop(index, 4, 5)
        while hit is None and index <= min(file_index, len(self.paths) - 1):
            hit = self._first_at_stop(index, at, pos if index == file_index else None)
            index, at = index + 1, 4
        if hit is None:
            self._next = (file_index, pos)
        return hit

    def _first_at_stop(self, index: int, start: int, end: int | None) -> BoundEvent | None:
        path = self.paths[index]
        for pos, t, ts in file_events(path, start, end):
            if ts >= self.stop:
                return BoundEvent(BinlogPosition(index, path.name, pos), t, ts)
        return None
