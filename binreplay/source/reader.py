"""Reading: binlog files in, `Transaction`s out.

The files must be one server's sequence, in order, without gaps, each named once; a transaction
is grouped by `assembler.Assembler`, framed and checked by `binlog.file.BinlogFile`. Detects
truncated tails (a truncated last file is a warning: its incomplete transaction never committed)
and broken sequences (an error).

A run reads its selection twice: once to validate it before the target is touched (`preflight`),
once to apply it. The first read records what it learned in a `validated.ValidatedRead`; the
second takes the transactions back from it instead of parsing the files again (validated.py).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog.events import writes_gtids
from binreplay.binlog.file import BinlogFile, FileTail, open_regular
from binreplay.binlog.names import check_file_sequence
from binreplay.errors import BadInputError, PositionError, TruncatedError
from binreplay.model import Transaction
from binreplay.source.assembler import Assembler
from binreplay.source.validated import BlockReader, ValidatedFile, ValidatedRead, restore

log = logging.getLogger(__name__)


@dataclass
class ReaderStats:
    files: int = 0
    events: int = 0
    bytes: int = 0
    transactions: int = 0
    unknown_events: Counter = field(default_factory=Counter)
    incomplete: list[str] = field(default_factory=list)   # transactions cut off by a file's end


class BinlogReader:
    """Iterates transactions over a list of binlog files, starting at a transaction boundary."""

    def __init__(self, paths: list[Path], *, start_file_index: int = 0, start_pos: int | None = None,
                 on_warning: Callable[[str], None] | None = None, validated: ValidatedRead | None = None,
                 record: ValidatedRead | None = None) -> None:
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
        self._validated = validated        # what a validation read of these files kept
        self._record = record              # this read is the validation read: keep what it finds
        self._table_maps: dict = {}        # TABLE_MAP bodies parsed so far (assembler.py), across files

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
        kept = self._validated.kept_from(f.path, skip) if self._validated is not None else None
        if kept is not None:
            entry, first = kept
            yield from self._kept_transactions(f, entry, first)
            if entry.complete:
                f.fde, f.server_id, f.tail = entry.fde, entry.server_id, entry.tail
                for msg in entry.warnings:
                    self._warn(msg)
                self.stats.incomplete += entry.incomplete
                return
            skip = max(skip or 4, entry.kept_end)   # the budget ran out: read on from there
        yield from self._scanned_transactions(f, skip)

    def _kept_transactions(self, f: BinlogFile, entry: ValidatedFile, first: int) -> Iterator[Transaction]:
        """The transactions the validation read kept, their bytes read back a block at a time."""
        with open_regular(f.path, "binlog file") as fh:
            blocks = BlockReader(fh.fileno())
            for i in range(first, len(entry.transactions)):
                trx = restore(entry, i, blocks)
                trx.seq = self._next_seq()
                self.stats.events += len(trx.spans)
                self.stats.bytes += trx.size
                yield trx

    def _scanned_transactions(self, f: BinlogFile, skip: int | None) -> Iterator[Transaction]:
        recorder = self._record
        record = recorder.begin(f.path, skip or 4) if recorder is not None else None
        warnings: list[str] = []

        def warn(msg: str) -> None:
            if record is not None:   # said again by the apply read, which takes this file back
                warnings.append(msg)
            self._warn(msg)

        assembler = Assembler(f, next_seq=self._next_seq, warn=warn, unknown=self._first_unknown,
                              table_maps=self._table_maps)
        verified_to = self._validated.verified_to(f.path) if self._validated is not None else 0
        events = f.scan(skip, verified_to=verified_to)
        if skip is not None:
            events = _checked_start(events, lambda t, pos: self._check_starts_transaction(f, t, pos, skip))
        for done in assembler.transactions(events):
            yield done
            if recorder is not None and record is not None:
                recorder.keep(record, done)
        assembler.finish()
        self.stats.events += assembler.events
        self.stats.bytes += assembler.bytes
        self.stats.incomplete += assembler.incomplete
        if recorder is not None and record is not None:
            recorder.end_of_file(record, f.tail, f.fde, f.server_id, warnings, list(assembler.incomplete))

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


def _checked_start(events: Iterator[tuple[int, int, int]],
                   check: Callable[[int, int], None]) -> Iterator[tuple[int, int, int]]:
    """The events, after running `check` on the first that is not file-level (the one a start
    position points at)."""
    head = []
    for ev in events:
        head.append(ev)
        if ev[0] not in C.FILE_LEVEL_EVENTS:
            check(ev[0], ev[1])
            break
    return itertools.chain(head, events)


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
