"""The spool: local copies of a live source's binlogs, written by the fetch (fetch.py).

A spool directory holds files named like the source's (`<base>.<seq>`), in sequence without gaps.
Each file is a byte-for-byte prefix of the source's file of that name, made of events the fetch has
checked (size, CRC32, contiguous positions). The files themselves are the only resume state.

What is guaranteed about a file's end:
- A transaction up to the fetch's pending limit (64 MiB) is appended only once it is complete, so
  in normal operation a file ends at a transaction boundary. A larger transaction is written through
  as it arrives: while it streams, or after the run stopped (signal, error) inside it, the file ends
  between two of its events. A kill -9 or a crash during a write can also leave part of an event.
- The position the fetch publishes (FetchStats.position) is always the end of a complete
  transaction (or of a file), fsynced when a file ends and at most every half second otherwise.
- A rerun first cuts the last file back to its last transaction boundary (`trim_to_boundary`), so
  nothing after that boundary is ever kept from a previous run: the source sends it again.

Every OS error on the spool (permissions, disk full, a path that is not a directory) becomes a
UsageError with one line naming the path: it is the machine's problem, not the source's or target's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog.boundaries import Boundaries, statement_control
from binreplay.binlog.events import parse_query, parse_rotate
from binreplay.binlog.file import BinlogFile
from binreplay.binlog.gtid_events import parse_mariadb_gtid
from binreplay.binlog.names import binlog_sort_key, is_binlog_name, next_binlog_name
from binreplay.errors import BadInputError, UsageError
from binreplay.model import Event, FormatDescription

log = logging.getLogger(__name__)



@contextlib.contextmanager
def spool_io(what: str, path: Path) -> Iterator[None]:
    """Turns an OSError while `what`-ing `path` into one clear line (exit 2)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot {what} spool {path}: {reason}; fix the directory (space, permissions) "
                         "or use another --spool-dir/--out, then rerun to resume") from None


def make_spool_dir(out: Path) -> None:
    with spool_io("create", out):
        out.mkdir(parents=True, exist_ok=True)


def spool_files(out: Path, first: str | None = None) -> list[Path]:
    """The binlog files of a spool directory in sequence order (from `first` on, if given)."""
    with spool_io("read", out):
        if not out.is_dir():
            return []
        found = [(binlog_sort_key(p.name), p) for p in out.iterdir() if is_binlog_name(p.name) and p.is_file()]
    found.sort()
    files = [p for _, p in found]
    if first is not None:
        files = [p for p in files if binlog_sort_key(p.name) >= binlog_sort_key(first)]
    return files


def spool_sequence(out: Path, first: str) -> list[Path]:
    """The spool's files from `first` on, checked to start with `first` and to have no gap."""
    existing = spool_files(out, first)
    if existing and existing[0].name != first:
        raise BadInputError(f"{out} holds {existing[0].name} but not the start file {first}: "
                            "use another --out/--spool-dir")
    for a, b in zip(existing, existing[1:]):
        if b.name != next_binlog_name(a.name):
            raise BadInputError(f"{out}: {a.name} is followed by {b.name} (a gap): use another directory")
    return existing


def feed_boundary(boundaries: Boundaries, t: int, body: bytes, fde: FormatDescription) -> bool:
    """Take one event of a spooled stream; True if the stream is now between transactions."""
    if t in C.GTID_EVENTS:
        return boundaries.gtid(t == C.MARIADB_GTID_EVENT
                               and not parse_mariadb_gtid(body, 0).flags & C.FL_STANDALONE).between
    if t in (C.QUERY_EVENT, C.QUERY_COMPRESSED_EVENT):
        sql = parse_query(body, fde.post_header_lengths[C.QUERY_EVENT - 1],
                          compressed=t == C.QUERY_COMPRESSED_EVENT).sql
        return boundaries.query(statement_control(sql)).between
    return boundaries.event(t).between


class SpoolFile:
    """The local copy of one source binlog, open for appending from `size` on (anything after is cut)."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        with spool_io("write", path):
            self.f = open(path, "r+b" if size else "w+b")  # noqa: SIM115 - open until close()
            self.f.truncate(size)
            self.f.seek(size)
        self.size = size
        self.synced_at = time.monotonic()

    def write(self, chunks: list[bytes]) -> None:
        data = b"".join(chunks)
        with spool_io("write", self.path):
            self.f.write(data)
            self.f.flush()
        self.size += len(data)

    def sync(self) -> None:
        with spool_io("write", self.path):
            os.fsync(self.f.fileno())
        self.synced_at = time.monotonic()

    def mark_closed(self) -> None:
        """The source clears the FDE's in-use flag when it closes a file (without recomputing the
        checksum); the copy does the same so it stays identical."""
        with spool_io("write", self.path):
            self.f.seek(4 + 17)
            flags = struct.unpack("<H", self.f.read(2))[0]
            if flags & C.LOG_EVENT_BINLOG_IN_USE_F:
                self.f.seek(4 + 17)
                self.f.write(struct.pack("<H", flags & ~C.LOG_EVENT_BINLOG_IN_USE_F))
            self.f.seek(self.size)

    def close(self) -> None:
        with spool_io("write", self.path):
            self.f.flush()
            os.fsync(self.f.fileno())
            self.f.close()


@dataclass
class Trimmed:
    """The spool's last file after `trim_to_boundary`: where the fetch goes on."""

    next_name: str                     # the file to ask the source for
    next_pos: int                      # and the position in it (4: from its start)
    file: SpoolFile | None = None      # the last file, open for appending, when resuming inside it
    fde: FormatDescription | None = None
    removed: bool = False              # the file held not even a whole FORMAT_DESCRIPTION: deleted
    end: int = 0                       # the kept file's size (a transaction or file end)


def trim_to_boundary(path: Path) -> Trimmed:
    """Cut the spool's last file back to its last transaction boundary; say where to go on."""
    bf = BinlogFile(path)
    boundaries = Boundaries()
    boundary = 0
    ended_by: str | None = None
    try:
        for ev in bf.events():
            assert bf.fde is not None
            if feed_boundary(boundaries, ev.type_code, bf.payload(ev), bf.fde):
                boundary = ev.end
            if ev.type_code == C.ROTATE_EVENT and not ev.flags & C.LOG_EVENT_ARTIFICIAL_F:
                ended_by = parse_rotate(bf.payload(ev))[1]
            elif ev.type_code == C.STOP_EVENT:
                ended_by = next_binlog_name(path.name)
    except BadInputError:
        if bf.fde is not None:
            raise   # corrupt in the middle: not a tail cut short by a kill
        boundary = 0  # not even a whole FORMAT_DESCRIPTION: fetch the file again
    if ended_by is not None and boundary == (bf.tail.clean_end if bf.tail else -1):
        return Trimmed(ended_by, 4, end=boundary)
    if boundary < 4 + C.HEADER_LEN:
        with spool_io("delete from", path):
            path.unlink()
        return Trimmed(path.name, 4, removed=True)
    if bf.tail is not None and boundary != bf.tail.size:
        log.warning("%s: cut back from %d to %d bytes (the last transaction was incomplete)",
                    path, bf.tail.size, boundary)
    return Trimmed(path.name, boundary, file=SpoolFile(path, boundary), fde=bf.fde, end=boundary)


def spool_events(paths: list[Path]) -> Iterator[tuple[Event, bytes, FormatDescription]]:
    """Every event of the given spool files, in order, with its body and its file's format."""
    for path in paths:
        bf = BinlogFile(path)
        for ev in bf.events():
            assert bf.fde is not None
            yield ev, bf.payload(ev), bf.fde
