"""Framing of binlog files: magic, 19-byte event headers, CRC32, the format description.

This layer knows where events begin and end and whether their bytes are intact. It does not
group events into transactions (that is `binreplay.source.reader`). Its one framing loop,
`BinlogFile.scan`, holds every check that needs no event body:

- the file is a regular file (a FIFO or device would block or never end) starting with the magic;
- every event is at least a header long and at most 1 GiB (the server's own limit);
- the header's end position (`log_pos`) is where the event really ends: a length field bit-flipped
  by a failing disk is corrupt, never mistaken for a file cut short. Servers leave `log_pos` 0 in
  some events (MariaDB 11.4+ inside transactions, artificial events), and a relay log's events
  carry their source's positions, offset by a constant: both are allowed;
- an event that runs past the end of the file with a consistent header is a truncated tail;
- the CRC32 of every event when the FORMAT_DESCRIPTION says the server wrote them, and always the
  FORMAT_DESCRIPTION's own (servers that know checksums always write it, whatever the algorithm).

A consumer may set a lane (`BinlogFile.lane`): a function that frames a whole transaction of the
common shape at once, applying these same checks to each of its events (source/assembler.py).
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog.events import parse_format_description, parse_rotate
from binreplay.binlog.header import body_of
from binreplay.errors import BadInputError, ChecksumError, PositionError, UnsupportedError
from binreplay.model import Event, FormatDescription

_HEADER = struct.Struct("<IBIIIH")
_FIELDS = struct.Struct("<BIII")         # type, server id, event size, log_pos (from offset 4 of the header)
_CRC = struct.Struct("<I")
MAX_EVENT_SIZE = 1 << 30                 # the server's hard limit (max_allowed_packet) is 1 GiB
MAX_FDE_SIZE = 64 << 10                  # a real FORMAT_DESCRIPTION is a few hundred bytes
RELEASE_EVERY = 16 << 20                 # give mapped pages back to the kernel every 16 MiB read
_TAIL_SCAN = 1 << 20                     # how far after a cut event complete events are looked for
_KNOWN_TYPES = frozenset(C.event_names())
_MIN, _MAX = C.HEADER_LEN, MAX_EVENT_SIZE
# The CRC-32 of any byte string followed by its own CRC-32 (little-endian): an event is intact
# when the CRC of all its bytes, checksum included, is this (one call, no unpacking).
CRC_RESIDUE = 0x2144DF1C
# The type `scan` yields for a transaction its consumer's lane framed whole (not an event type).
LANE = 0x100


@dataclass
class FileTail:
    """How a file ended: cleanly, or with a partial event (bytes cut short)."""

    size: int
    clean_end: int                 # offset after the last complete event
    partial_event_at: int | None = None
    rotate_to: str | None = None   # next file named by the closing ROTATE event
    stopped: bool = False          # closed with a STOP event (server shut down)


def crc_matches(raw: bytes | memoryview) -> bool:
    return zlib.crc32(raw[:-C.CRC_LEN]) == _CRC.unpack_from(raw, len(raw) - C.CRC_LEN)[0]


def verify_crc(raw: bytes, where: str) -> None:
    if not crc_matches(raw):
        raise ChecksumError(f"{where}: CRC32 checksum mismatch (corrupt binlog)")


def verify_fde_crc(raw: bytes, where: str) -> None:
    """verify_crc for a FORMAT_DESCRIPTION event, whose in-use flag may differ from when it was checksummed."""
    # The server rewrites the FDE's "in use" flag when it closes the file without
    # recomputing the checksum, so the CRC covers the flags as they were at write time.
    if crc_matches(raw):
        return
    fixed = bytearray(raw)
    flags = struct.unpack_from("<H", fixed, 17)[0]
    struct.pack_into("<H", fixed, 17, flags & ~C.LOG_EVENT_BINLOG_IN_USE_F)
    verify_crc(bytes(fixed), where)


def open_regular(path: Path, what: str):
    """Open a file for reading, refusing what is not a regular file (a FIFO would block in open())."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BadInputError(f"{what} not found: {path}") from None
    except PermissionError:
        raise BadInputError(f"cannot read {what} (permission denied): {path}") from None
    except OSError as exc:  # a symlink loop, a name too long, ...
        raise BadInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"not a {what} (a directory): {path}")
    if not stat.S_ISREG(st.st_mode):
        raise BadInputError(f"not a {what} (not a regular file): {path}")
    try:
        return open(path, "rb", buffering=0)
    except OSError as exc:
        raise BadInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


@dataclass
class BinlogFile:
    """One binlog file on disk; `scan()` walks it, verifying framing and checksums."""

    path: Path
    index: int = 0
    fde: FormatDescription | None = None
    tail: FileTail | None = None
    server_id: int | None = None     # of the FORMAT_DESCRIPTION event: the server that wrote the file
    # Called once the file's FORMAT_DESCRIPTION is read (the reader checks files belong together).
    on_format: Callable[[BinlogFile], None] | None = field(default=None, repr=False)
    # The file's bytes while `scan()` runs: event (start, end) offsets index it.
    data: mmap.mmap | None = field(default=None, repr=False)
    # Set by a consumer that frames whole transactions in one step (source/assembler.py, the lane):
    # called at a MariaDB GTID event on the fast path with (data, pos, size, check_crc, verified_to),
    # it returns where the transaction ends, having checked every event of it as this loop would, or
    # 0 to have them yielded one by one. Its transaction is then yielded as (LANE, start, end).
    lane: Callable[[mmap.mmap, int, int, bool, int], int] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    def scan(self, skip_until: int | None = None, *, verified_to: int = 0) -> Iterator[tuple[int, int, int]]:
        """Yield (type code, start, end) of every event in file order; `self.data` holds the bytes.

        The FORMAT_DESCRIPTION event is always yielded first. With `skip_until`, the events before
        that offset are skipped (not checksummed); it must be an event boundary (else PositionError).
        Events ending at or before `verified_to` skip the per-event CRC (an earlier read of this run
        checked them; the FORMAT_DESCRIPTION is always checked)."""
        with open_regular(self.path, "binlog file") as f:
            try:
                magic = f.read(4)
                size = os.fstat(f.fileno()).st_size
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if magic == C.MAGIC else None
            except (OSError, ValueError) as exc:   # an I/O error, no address space for the mapping, ...
                raise BadInputError(f"cannot read binlog file {self.path}: "
                                    f"{getattr(exc, 'strerror', None) or exc}") from None
            if magic == C.ENCRYPTED_MAGIC:
                raise UnsupportedError(f"{self.path}: encrypted binlog; decrypt it with the server first")
            if mapped is None:
                raise BadInputError(f"not a binlog file (bad magic bytes): {self.path}")
            with mapped as mm:
                self.data = mm
                try:
                    yield from self._events_of(mm, size, skip_until, verified_to)
                finally:
                    self.data = None

    def _events_of(self, mm: mmap.mmap, size: int, skip_until: int | None,
                   verified_to: int) -> Iterator[tuple[int, int, int]]:
        # This loop runs once per event of every binlog: keep it lean (no per-event objects
        # but the yielded tuple, no string formatting; messages are built only on error).
        unpack = _FIELDS.unpack_from
        crc_of = _CRC.unpack_from
        crc32 = zlib.crc32
        view = memoryview(mm)
        pos = 4
        check_crc = False
        own_id: int | None = None   # events of the file's own server end where their log_pos says
        relay = False               # after a second FORMAT_DESCRIPTION: a relay log
        relayed: int | None = None  # there, log_pos - end of the source's events (learned, constant)
        released = 0
        skipping = skip_until is not None and skip_until > 4
        first = True
        careful = True              # the first event, or skipping: never on the fast path
        closed: str | None = None   # the ROTATE or STOP event that closed the file
        # Events the fast path leaves to the full one: the first event is the FORMAT_DESCRIPTION.
        special = frozenset({C.FORMAT_DESCRIPTION_EVENT, C.ROTATE_EVENT, C.STOP_EVENT})
        gtid = C.MARIADB_GTID_EVENT   # where a lane may take a whole transaction
        try:
            while True:
                if pos - released >= RELEASE_EVERY:
                    # Consumers copy what they keep, so pages behind us can go: RSS stays flat.
                    upto = pos - pos % mmap.PAGESIZE
                    mm.madvise(mmap.MADV_DONTNEED, released, upto - released)
                    released = upto
                if pos >= size:
                    self._set_tail(FileTail(size, pos))
                    break
                if pos + C.HEADER_LEN > size:
                    self._set_tail(FileTail(size, pos, partial_event_at=pos))
                    break
                t, server_id, ev_size, log_pos = unpack(mm, pos + 4)
                end = pos + ev_size
                if log_pos == end and end <= size and not careful and t not in special and _MIN <= ev_size <= _MAX:
                    # The common case, checked in full: an ordinary event, its header consistent.
                    if t == gtid and self.lane is not None:
                        lane_end = self.lane(mm, pos, size, check_crc, verified_to)
                        if lane_end:
                            yield LANE, pos, lane_end
                            pos = lane_end
                            continue
                    if check_crc and end > verified_to and crc32(view[pos:end]) != CRC_RESIDUE:
                        raise ChecksumError(f"{self.path}: {C.event_name(t)} event at position {pos}: CRC32 "
                                            "checksum mismatch (corrupt binlog)")
                    yield t, pos, end
                    pos = end
                    continue
                # Where the header says the event ends must be where it ends (see the module docstring).
                consistent = (not log_pos or log_pos == end or t == C.FORMAT_DESCRIPTION_EVENT and not first
                              or relay and server_id != own_id and (relayed is None or log_pos - end == relayed))
                if ev_size < C.HEADER_LEN or ev_size > MAX_EVENT_SIZE:
                    self._bad_header(pos, ev_size, log_pos, size)
                if end > size:
                    if not consistent:
                        self._bad_header(pos, ev_size, log_pos, size)
                    if not log_pos and not relay:
                        # Nothing to cross-check the size with (MariaDB 11.4+ inside transactions):
                        # a cut file has no complete event after the cut one.
                        self._no_event_after(mm, pos, size, (own_id, server_id), check_crc)
                    # A header that says where the event ends, consistently, cut short by the file's end.
                    self._set_tail(FileTail(size, pos, partial_event_at=pos))
                    break
                if first or t == C.FORMAT_DESCRIPTION_EVENT:
                    # Relay logs carry the source's FDE again mid-file; it governs what follows, and
                    # the positions after it are the source's. A server never repeats its own.
                    if not consistent:
                        self._bad_header(pos, ev_size, log_pos, size)
                    if not first and server_id == own_id:
                        raise BadInputError(f"{self.path}: a second FORMAT_DESCRIPTION event of server {server_id} at "
                                            f"position {pos} (corrupt binlog?)")
                    self._read_fde(mm, pos, end, t, first)
                    assert self.fde is not None
                    check_crc = self.fde.has_crc32
                    if not check_crc:
                        self._check_no_crc(mm, end, size)
                    own_id, relayed, relay, first = self.server_id, None, not first, False
                    careful, closed = skipping, None
                    yield t, pos, end
                    pos = end
                    continue
                if closed is not None:   # (in a relay log, its source's FORMAT_DESCRIPTION and events follow)
                    raise BadInputError(f"{self.path}: {C.event_name(t)} event at position {pos} follows the "
                                        f"{closed} event that closes the file (corrupt binlog?)")
                if skipping and pos < skip_until:  # type: ignore[operator]
                    if not consistent:
                        self._bad_header(pos, ev_size, log_pos, size)
                    if end > skip_until:
                        raise PositionError(f"{self.path}: start position {skip_until} is inside an event "
                                            f"(the event at {pos} ends at {end})")
                    pos = end
                    continue
                skipping = careful = False
                # The checksum first: when it fails, it is the better diagnosis of a damaged event.
                if check_crc and end > verified_to and crc32(view[pos:end - 4]) != crc_of(mm, end - 4)[0]:
                    raise ChecksumError(f"{self.path}: {C.event_name(t)} event at position {pos}: CRC32 "
                                        "checksum mismatch (corrupt binlog)")
                if not consistent:
                    self._bad_header(pos, ev_size, log_pos, size)
                if log_pos and log_pos != end and relay:
                    relayed = log_pos - end
                if t == C.ROTATE_EVENT or t == C.STOP_EVENT:
                    if self._closing_event(mm, pos, end, t) and not relay:
                        closed, careful = C.event_name(t), True
                    relayed = None   # a relay log's next events come from another source file
                yield t, pos, end
                pos = end
        finally:
            view.release()
        if skipping and pos != skip_until:   # a start at the very end (a spool not yet grown) reads nothing
            raise PositionError(f"{self.path}: start position {skip_until} is beyond the end of the file ({pos})")

    def _check_no_crc(self, mm: mmap.mmap, at: int, size: int) -> None:
        """A FORMAT_DESCRIPTION saying "no checksums" before an event that ends with its CRC32 (a
        damaged algorithm byte, its own CRC forged or recomputed) would have every checksum parsed
        as body bytes: refused. One event is enough (a chance match is 1 in 2^32)."""
        if at + C.HEADER_LEN > size:
            return
        ev_size = _FIELDS.unpack_from(mm, at + 4)[2]
        if C.HEADER_LEN + C.CRC_LEN <= ev_size <= size - at and self._ends_with_crc(mm, at, ev_size):
            raise BadInputError(f"{self.path}: the FORMAT_DESCRIPTION event says the events have no checksums, but "
                                f"the event at position {at} ends with its CRC32 (corrupt binlog)")

    def _no_event_after(self, mm: mmap.mmap, pos: int, size: int, server_ids: tuple[int | None, int],
                        check_crc: bool) -> None:
        """The event at `pos` runs past the end of the file and its header has no end position: it is
        a truncated tail only if no complete event follows (within _TAIL_SCAN bytes). An event is
        recognised by its server id (the file's, or the cut event's), its end position and its CRC."""
        limit = min(size, pos + _TAIL_SCAN)
        for server_id in {i for i in server_ids if i is not None}:
            needle = _CRC.pack(server_id)
            at = mm.find(needle, pos + 5 + 1, limit)
            while at != -1:
                start = at - 5   # the server id is at offset 5 of a header
                if start + C.HEADER_LEN <= size:
                    t, _sid, ev_size, log_pos = _FIELDS.unpack_from(mm, start + 4)
                    end = start + ev_size
                    if (log_pos == end and ev_size >= _MIN and end <= size and t in _KNOWN_TYPES
                            and (not check_crc or self._ends_with_crc(mm, start, ev_size))):
                        raise BadInputError(
                            f"{self.path}: corrupt event header at position {pos}: its size "
                            f"({_FIELDS.unpack_from(mm, pos + 4)[2]}) runs past the end of the file, but a "
                            f"complete {C.event_name(t)} event follows at {start}")
                at = mm.find(needle, at + 1, limit)

    @staticmethod
    def _ends_with_crc(mm: mmap.mmap, at: int, ev_size: int) -> bool:
        with memoryview(mm) as view:
            event = view[at:at + ev_size]
            try:
                return crc_matches(event)
            finally:
                event.release()

    def _bad_header(self, pos: int, ev_size: int, log_pos: int, size: int) -> None:
        raise BadInputError(f"{self.path}: corrupt event header at position {pos} (event size {ev_size}, "
                            f"end position {log_pos}, file size {size})")

    def _set_tail(self, tail: FileTail) -> None:
        prev = self.tail
        if prev is not None:   # the closing ROTATE or STOP seen before the end
            tail.rotate_to, tail.stopped = prev.rotate_to, prev.stopped
        self.tail = tail

    def _closing_event(self, mm: mmap.mmap, pos: int, end: int, t: int) -> bool:
        """Whether the ROTATE or STOP event at `pos` closes the file (a relay log's fake ROTATE does not)."""
        flags = struct.unpack_from("<H", mm, pos + 17)[0]
        if t == C.STOP_EVENT:
            self.tail = FileTail(0, end, stopped=True)
            return True
        if flags & C.LOG_EVENT_ARTIFICIAL_F:
            return False
        assert self.fde is not None
        body = body_of(mm[pos:end], self.fde.has_crc32)
        if len(body) < 8:
            raise BadInputError(f"{self.path}: ROTATE event at position {pos} is too short")
        self.tail = FileTail(0, end, rotate_to=parse_rotate(body)[1])
        return True

    def _read_fde(self, mm: mmap.mmap, pos: int, end: int, t: int, first: bool) -> None:
        if t == C.START_EVENT_V3:
            raise UnsupportedError(f"{self.path}: first event is {C.event_name(t)}, not FORMAT_DESCRIPTION "
                                   "(binlog format before MySQL 5.0 is not supported)")
        if t != C.FORMAT_DESCRIPTION_EVENT:
            raise BadInputError(f"{self.path}: first event is {C.event_name(t)} at position {pos}, not "
                                "FORMAT_DESCRIPTION (corrupt binlog?)")
        where = f"{self.path}: FORMAT_DESCRIPTION event at position {pos}"
        if end - pos > MAX_FDE_SIZE:
            raise BadInputError(f"{where}: {end - pos} bytes long, not a format description")
        raw = mm[pos:end]
        fde = parse_format_description(raw, where)
        if fde.checksum_trailer:
            verify_fde_crc(raw, where)
        self.fde = fde
        if first:  # the file's own FDE (a relay log repeats its source's later)
            self.server_id = struct.unpack_from("<I", raw, 5)[0]
            if self.on_format is not None:
                self.on_format(self)

    def events(self, skip_until: int | None = None) -> Iterator[Event]:
        """Every event as an `Event` (its bytes copied): for the readers that are not on the hot path."""
        for t, start, end in self.scan(skip_until):
            assert self.data is not None
            raw = self.data[start:end]
            ts, _t, server_id, _size, _lp, flags = _HEADER.unpack_from(raw)
            yield Event(t, ts, server_id, flags, start, end, raw, self.fde if t == C.FORMAT_DESCRIPTION_EVENT else None)

    def payload(self, event: Event) -> bytes:
        """The event body without header and checksum."""
        assert self.fde is not None
        # The FORMAT_DESCRIPTION keeps its trailer: its parser reads the checksum algorithm from it.
        return body_of(event.raw, self.fde.has_crc32 and event.type_code != C.FORMAT_DESCRIPTION_EVENT)
