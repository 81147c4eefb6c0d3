"""What the validation read learned, handed to the apply read so it does not do the work again.

A run reads its selection before touching the target (run/preflight.py): every event framed,
checksummed and parsed, every transaction assembled. Parsing is the costly part of a read (a
Python step per event), so the validation read keeps each transaction it assembled, without its
bytes and with its event spans packed in an array, up to a memory budget. The apply read then
takes them back: one `pread` of the transaction's bytes from the file, no event loop. Past the
budget (a selection of gigabytes), the apply read frames and parses the rest again, but skips
the checksums the validation read already verified.

The files must be the ones that were validated: a file rewritten in between (another inode, or
the same size with another mtime) is read again in full; one that shrank is an error; one that
only grew (a live spool) keeps what was validated and is read on from there.
"""

from __future__ import annotations

import bisect
import os
from array import array
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from binreplay.binlog.file import FileTail
from binreplay.errors import BadInputError
from binreplay.hotpath import compiled
from binreplay.model import FormatDescription, Span, Transaction

DEFAULT_BUDGET = 48 << 20      # estimated bytes of kept transactions: with in-flight work, under 200 MB RSS
_PER_TRANSACTION = 800          # its object, infos dict and GTID (tracemalloc: ~1,100 B per OLTP one, 13 events)
_PER_EVENT = 3 * 8              # one packed span (and a bytes object per transaction: in _PER_TRANSACTION)


def identity(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


@dataclass
class ValidatedFile:
    """One file as the validation read saw it."""

    identity: tuple[int, int, int, int]
    from_pos: int                          # where that read started in it (4: the first event)
    verified_end: int = 0                  # every event before this offset was checksummed
    transactions: list[Transaction | None] = field(default_factory=list)   # kept, in order (None: taken back)
    spans: list[bytes] = field(default_factory=list)                # each one's events, packed (pack_spans)
    starts: array = field(default_factory=lambda: array("q"))       # each one's start and end offsets
    ends: array = field(default_factory=lambda: array("q"))
    cut: bool = False                      # the budget ran out: transactions after kept_end were not kept
    complete: bool = False                 # read to the file's end, every transaction in it kept
    tail: FileTail | None = None
    fde: FormatDescription | None = None
    server_id: int | None = None
    warnings: list[str] = field(default_factory=list)   # what reading it warned, said again by the apply read
    incomplete: list[str] = field(default_factory=list)  # the transactions it found cut off (also warned)

    @property
    def kept_end(self) -> int:
        """End of the last kept transaction (0: none kept)."""
        return self.ends[-1] if self.ends else 0


class ValidatedRead:
    """Filled by the validation read (`BinlogReader(record=...)`), used by the apply read
    (`BinlogReader(validated=...)`)."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.files: dict[Path, ValidatedFile] = {}
        self.budget = budget
        self.used = 0                       # estimated bytes kept

    # -- the validation read ----------------------------------------------------------------

    def begin(self, path: Path, from_pos: int) -> ValidatedFile:
        try:
            known = identity(path)
        except OSError:
            known = (-1, -1, -1, -1)   # matches no file: reading it says what is wrong
        entry = ValidatedFile(known, from_pos)
        self.files[path] = entry
        return entry

    def keep(self, entry: ValidatedFile, trx: Transaction) -> None:
        """After the validation read's consumer is done with `trx`: keep it, stripped, within the budget."""
        entry.verified_end = trx.end_pos
        if entry.cut:
            return
        cost = _PER_TRANSACTION + _PER_EVENT * len(trx.spans)
        from_file = trx.positions is None    # its bytes are the file's slice: read them again later
        if not from_file:
            cost += len(trx.data)
        if self.used + cost > self.budget:
            entry.cut = True                  # the rest of the file is read anew
            return
        self.used += cost
        entry.starts.append(trx.start_pos)
        entry.ends.append(trx.end_pos)
        entry.spans.append(pack_spans(trx.spans))
        trx.spans = []
        if from_file:
            trx.data = b""
        entry.transactions.append(trx)

    def end_of_file(self, entry: ValidatedFile, tail: FileTail | None, fde: FormatDescription | None,
                    server_id: int | None, warnings: list[str], incomplete: list[str]) -> None:
        entry.tail, entry.fde, entry.server_id = tail, fde, server_id
        entry.warnings, entry.incomplete = warnings, incomplete
        if tail is not None:
            entry.verified_end = max(entry.verified_end, tail.clean_end)
        entry.complete = tail is not None and not entry.cut

    # -- the apply read ---------------------------------------------------------------------

    def verified_to(self, path: Path) -> int:
        """Up to where `path`'s events need no checksum now (0: check them all)."""
        entry = self.files.get(path)
        if entry is None or not self._unchanged(path, entry):
            return 0
        return entry.verified_end

    def kept_from(self, path: Path, skip: int | None) -> tuple[ValidatedFile, int] | None:
        """The kept transactions of `path` from `skip` on (None: the file's first): the entry and the
        index of the first to apply; None when the file must be read. `skip` is where the validation
        read started or where a transaction ends (a resume point), both transaction boundaries."""
        entry = self.files.get(path)
        if entry is None or not entry.transactions or not self._unchanged(path, entry):
            return None
        start = skip if skip is not None and skip > 4 else 4
        if start < entry.from_pos:
            return None
        i = bisect.bisect_left(entry.starts, start)
        at_boundary = start == entry.from_pos or i > 0 and entry.ends[i - 1] <= start
        if not at_boundary or i < len(entry.transactions) and entry.transactions[i] is None:
            return None   # not a boundary the validation read saw, or taken back already
        return entry, i

    def _unchanged(self, path: Path, entry: ValidatedFile) -> bool:
        try:
            now = identity(path)
        except OSError:
            return False   # reading it will say why
        size = now[3]
        if size < entry.verified_end:
            raise BadInputError(f"{path} shrank from {entry.verified_end} to {size} bytes since it was validated")
        same_file = now[:2] == entry.identity[:2]
        return same_file and (now[2:] == entry.identity[2:] or size > entry.identity[3])


def _pack_spans(spans: list[Span]) -> bytes:
    return array("q", chain.from_iterable(spans)).tobytes()


def _unpack_spans(packed: bytes) -> list[Span]:
    values = array("q")
    values.frombytes(packed)
    triples = iter(values)
    return list(zip(triples, triples, triples))


# A kept transaction's spans as int64 triples (its events' type, start and end): compiled when built.
pack_spans = compiled.pack_spans if compiled is not None else _pack_spans
unpack_spans = compiled.unpack_spans if compiled is not None else _unpack_spans


class BlockReader:
    """Reads byte ranges of a file in order, one `pread` per block instead of one per range."""

    BLOCK = 1 << 20

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._start = 0
        self._buf = b""

    def read(self, start: int, size: int) -> bytes:
        at = start - self._start
        if at < 0 or at + size > len(self._buf):
            self._buf, self._start, at = os.pread(self.fd, max(size, self.BLOCK), start), start, 0
            if len(self._buf) < size:
                raise BadInputError(f"could not read {size} bytes at {start} of a validated file")
        return self._buf[at:at + size]


def restore(entry: ValidatedFile, i: int, blocks: BlockReader) -> Transaction:
    """The i-th kept transaction with its bytes and spans back (each is taken back once)."""
    trx = entry.transactions[i]
    assert trx is not None
    entry.transactions[i] = None   # its memory goes with the apply read
    trx.spans = unpack_spans(entry.spans[i])
    entry.spans[i] = b""
    refill(trx, blocks)
    return trx


def refill(trx: Transaction, blocks: BlockReader) -> None:
    """Put back the bytes a kept transaction was stripped of: its file's slice (a transaction whose
    bytes are not the file's keeps them, see ValidatedRead.keep)."""
    if not trx.data:
        trx.data = blocks.read(trx.start_pos, trx.end_pos - trx.start_pos)
