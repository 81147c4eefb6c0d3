"""Reading: binlog files in, `Transaction`s out.

The files must be one server's sequence, in order, without gaps, each named once; a transaction
is grouped by `assembler.Assembler`, framed and checked by `binlog.file.BinlogFile`. Detects
truncated tails (a truncated last file is a warning: its incomplete transaction never committed)
and broken sequences (an error).

A run reads its selection twice: once to validate it before the target is touched (`preflight`),
once to apply it. `VerifiedExtents` carries what the first read checksummed to the second, which
then skips those CRCs (the files' identity is checked: a file rewritten in between is read again
in full, one that shrank is an error).
"""

from __future__ import annotations

import functools
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from binreplay.binlog import constants as C
from binreplay.binlog import events as E
from binreplay.binlog.file import BinlogFile, FileTail
from binreplay.binlog.names import check_file_sequence
from binreplay.errors import BadInputError, PositionError, TruncatedError
from binreplay.model import FormatDescription, Transaction
from binreplay.source.assembler import Assembler

log = logging.getLogger(__name__)


@dataclass
class ReaderStats:
    files: int = 0
    events: int = 0
    bytes: int = 0
    transactions: int = 0
    unknown_events: Counter = field(default_factory=Counter)
    incomplete: list[str] = field(default_factory=list)   # transactions cut off by a file's end


@dataclass
class VerifiedExtents:
    """How far each file's events were checksummed by an earlier read, and the file it was."""

    extents: dict[Path, tuple[tuple[int, int, int], int]] = field(default_factory=dict)  # path -> (identity, end)

    @staticmethod
    def identity(path: Path) -> tuple[int, int, int]:
        st = os.stat(path)
        return st.st_dev, st.st_ino, st.st_mtime_ns

    def record(self, path: Path, end: int) -> None:
        self.extents[path] = (self.identity(path), end)

    def verified_to(self, path: Path) -> int:
        """Up to where `path`'s events need no CRC check now (0: check them all)."""
        known = self.extents.get(path)
        if known is None:
            return 0
        identity, end = known
        try:
            now = self.identity(path)
            size = os.stat(path).st_size
        except OSError:
            return 0
        if size < end:
            raise BadInputError(f"{path} shrank from {end} to {size} bytes since it was validated")
        # A file that only grew (a live spool) keeps its verified prefix; one rewritten in place does not.
        same = now[:2] == identity[:2] and (now[2] == identity[2] or size > end)
        return end if same else 0


def writes_gtids(fde: FormatDescription) -> bool:
    """Every transaction starts with a GTID event (MariaDB 10+, MySQL 5.7.6+ anonymous ones)."""
    return fde.flavor == "mariadb" or E._version_tuple(fde.server_version) >= (5, 7, 6)


class BinlogReader:
    """Iterates transactions over a list of binlog files, starting at a transaction boundary."""

    def __init__(self, paths: list[Path], *, start_file_index: int = 0, start_pos: int | None = None,
                 on_warning: Callable[[str], None] | None = None, verified: VerifiedExtents | None = None,
                 record: VerifiedExtents | None = None) -> None:
        if not paths:
            raise BadInputError("no binlog files given")
        _check_named_once(paths)
        check_file_sequence(paths)
        self.files = [BinlogFile(p, i) for i, p in enumerate(paths)]
        for f in self.files:
            f.on_format = self._check_same_origin
        self.start_file_index = start_file_index
        self.start_pos = start_pos
        self.stats = ReaderStats()
        self._warn = on_warning or (lambda msg: log.warning(msg))
        self._seq = 0
        self._verified = verified          # skip CRCs these extents already checked
        self._record = record              # note the extents this read checked

    @functools.cached_property
    def file_sizes(self) -> list[int]:
        """Each file's size (0 if it cannot be read: reading it will say why)."""
        sizes = []
        for f in self.files:
            try:
                sizes.append(f.path.stat().st_size)
            except OSError:
                sizes.append(0)
        return sizes

    @property
    def last_name(self) -> str:
        return self.files[-1].name

    @property
    def last_tail(self) -> FileTail | None:
        """How the last file ended, once it was read."""
        return self.files[-1].tail

    @property
    def total_bytes(self) -> int:
        total = sum(self.file_sizes[self.start_file_index:]) - (self.start_pos or 0)
        return max(total, 0)

    def transactions(self) -> Iterator[Transaction]:
        for f in self.files[self.start_file_index:]:
            yield from self._file_transactions(f, self._skip_for(f))
            self._check_rotation(f)

    def _skip_for(self, f: BinlogFile) -> int | None:
        """The start position, for the first file read (4 is the first event anyway)."""
        if f.index == self.start_file_index and self.start_pos and self.start_pos > 4:
            return self.start_pos
        return None

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        self.stats.transactions += 1
        return seq

    def _first_unknown(self, name: str) -> bool:
        self.stats.unknown_events[name] += 1
        return self.stats.unknown_events[name] == 1

    def _file_transactions(self, f: BinlogFile, skip: int | None) -> Iterator[Transaction]:
        self.stats.files += 1
        assembler = Assembler(f, next_seq=self._next_seq, warn=self._warn, unknown=self._first_unknown)
        feed = assembler.feed
        verified_to = self._verified.verified_to(f.path) if self._verified is not None else 0
        events = bytes_ = 0
        first_after_skip = skip is not None
        for t, pos, end in f.scan(skip, verified_to=verified_to):
            events += 1
            bytes_ += end - pos
            if first_after_skip and t not in C.FILE_LEVEL_EVENTS:
                first_after_skip = False
                self._check_starts_transaction(f, t, pos, skip)
            done = feed(t, pos, end)
            if done is not None:
                yield done
        assembler.finish()
        self.stats.events += events
        self.stats.bytes += bytes_
        self.stats.incomplete += assembler.incomplete
        if self._record is not None and f.tail is not None:
            self._record.record(f.path, f.tail.clean_end)

    def _check_starts_transaction(self, f: BinlogFile, t: int, pos: int, skip: int | None) -> None:
        starts = t in C.GTID_EVENTS or t in C.STATEMENT_CONTEXT_EVENTS
        if t == C.QUERY_EVENT:
            assert f.fde is not None
            starts = not writes_gtids(f.fde)
        if not starts:
            raise PositionError(f"{f.path}: start position {skip} is inside a transaction (it points at a "
                                f"{C.event_name(t)} event); give the position of the transaction's first event")

    def _check_same_origin(self, f: BinlogFile) -> None:
        """Files of one sequence come from one server: a file from another server (a replica's, or
        one restored from elsewhere) would replay the wrong history, so it is refused up front."""
        prev = next((p for p in reversed(self.files[:f.index]) if p.fde is not None), None)
        if prev is None or f.fde is None or prev.fde is None:
            return
        if f.fde.flavor != prev.fde.flavor or f.server_id != prev.server_id:
            raise BadInputError(
                f"{f.path} was written by {f.fde.flavor} server id {f.server_id} ({f.fde.server_version}), "
                f"but {prev.name} by {prev.fde.flavor} server id {prev.server_id}: the files are not one "
                "server's binlog sequence")

    def _check_rotation(self, f: BinlogFile) -> None:
        assert f.tail is not None
        is_last = f.index == len(self.files) - 1
        if f.tail.partial_event_at is not None:
            msg = (f"{f.path}: truncated: the event at position {f.tail.partial_event_at} is incomplete "
                   f"(file size {f.tail.size})")
            if not is_last:
                raise TruncatedError(msg)
            self.stats.incomplete.append(msg)
            self._warn(msg)
        if not is_last and f.tail.rotate_to and f.tail.rotate_to != self.files[f.index + 1].name:
            raise BadInputError(f"{f.path} rotates to {f.tail.rotate_to}, but the next file given is "
                                f"{self.files[f.index + 1].name}")


def _check_named_once(paths: list[Path]) -> None:
    """The same file given twice would be replayed twice (names without a sequence number included)."""
    seen: dict[object, Path] = {}
    for p in paths:
        try:
            st = os.stat(p)
            key: object = (st.st_dev, st.st_ino)
        except OSError:
            key = os.path.abspath(p)   # reading it will say what is wrong with it
        if key in seen:
            raise BadInputError(f"{p} is given twice (as {seen[key]} and {p})")
        seen[key] = p
