"""Framing of binlog files: magic, 19-byte event headers, CRC32, the format description.

This layer knows where events begin and end and whether their bytes are intact.
It does not group events into transactions (that is `binreplay.source.reader`).
"""

from __future__ import annotations

import io
import mmap
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from binreplay.binlog import constants as C
from binreplay.binlog.events import parse_format_description, parse_rotate
from binreplay.binlog.header import body_of
from binreplay.errors import BadInputError, ChecksumError, PositionError, UnsupportedError
from binreplay.model import Event, FormatDescription

_HEADER = struct.Struct("<IBIIIH")
_MAX_EVENT_SIZE = 1 << 30  # the server's hard limit (max_allowed_packet) is 1 GiB
_RELEASE_EVERY = 16 << 20  # give mapped pages back to the kernel every 16 MiB read


@dataclass
class FileTail:
    """How a file ended: cleanly, or with a partial event (bytes cut short)."""

    size: int
    clean_end: int                 # offset after the last complete event
    partial_event_at: int | None = None
    rotate_to: str | None = None   # next file named by the closing ROTATE event
    stopped: bool = False          # closed with a STOP event (server shut down)


def verify_crc(raw: bytes, where: str) -> None:
    expected = struct.unpack_from("<I", raw, len(raw) - C.CRC_LEN)[0]
    if zlib.crc32(memoryview(raw)[:-C.CRC_LEN]) != expected:
        raise ChecksumError(f"{where}: CRC32 checksum mismatch (corrupt binlog)")


def verify_fde_crc(raw: bytes, where: str) -> None:
    """verify_crc for a FORMAT_DESCRIPTION event, whose in-use flag may differ from when it was checksummed."""
    # The server rewrites the FDE's "in use" flag when it closes the file without
    # recomputing the checksum, so the CRC covers the flags as they were at write time.
    fixed = bytearray(raw)
    flags = struct.unpack_from("<H", fixed, 17)[0]
    try:
        verify_crc(bytes(fixed), where)
    except ChecksumError:
        struct.pack_into("<H", fixed, 17, flags & ~C.LOG_EVENT_BINLOG_IN_USE_F)
        verify_crc(bytes(fixed), where)


@dataclass
class BinlogFile:
    """One binlog file on disk; `events()` walks it, verifying framing and checksums."""

    path: Path
    index: int = 0
    fde: FormatDescription | None = None
    tail: FileTail | None = None
    server_id: int | None = None     # of the FORMAT_DESCRIPTION event: the server that wrote the file
    # Called once the file's FORMAT_DESCRIPTION is read (the reader checks files belong together).
    on_format: Callable[["BinlogFile"], None] | None = field(default=None, repr=False)
    _size: int = field(default=0, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    def open(self) -> io.BufferedReader:
        try:
            f = open(self.path, "rb", buffering=1 << 20)
        except FileNotFoundError:
            raise BadInputError(f"binlog file not found: {self.path}") from None
        except IsADirectoryError:
            raise BadInputError(f"not a binlog file (a directory): {self.path}") from None
        except PermissionError:
            raise BadInputError(f"cannot read binlog file (permission denied): {self.path}") from None
        magic = f.read(4)
        if magic == C.ENCRYPTED_MAGIC:
            f.close()
            raise UnsupportedError(f"{self.path}: encrypted binlog; decrypt it with the server first")
        if magic != C.MAGIC:
            f.close()
            raise BadInputError(f"not a binlog file (bad magic bytes): {self.path}")
        self._size = self.path.stat().st_size
        return f

    def events(self, skip_until: int | None = None) -> Iterator[Event]:
        """Yield every event in file order.

        The FORMAT_DESCRIPTION event is always yielded first. With `skip_until`,
        the events before that offset are skipped without being checksummed;
        the offset must be an event boundary (else PositionError).
        """
        with self.open() as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            # This loop runs once per event of every binlog: keep it lean (mmap slices,
            # no per-event string formatting; messages are built only on error).
            size = len(mm)
            unpack = _HEADER.unpack_from
            crc32 = zlib.crc32
            pos = 4
            first = True
            has_crc = False
            released = 0
            while True:
                if pos - released >= _RELEASE_EVERY:
                    # Events are copied out of the map, so pages behind us can go: RSS stays flat
                    # however large the file is.
                    upto = pos - pos % mmap.PAGESIZE
                    mm.madvise(mmap.MADV_DONTNEED, released, upto - released)
                    released = upto
                if pos >= size:
                    prev = self.tail
                    self.tail = FileTail(size, pos, rotate_to=prev.rotate_to if prev else None,
                                         stopped=prev.stopped if prev else False)
                    break
                if pos + C.HEADER_LEN > size:
                    self._mark_partial(pos)
                    break
                ts, type_code, server_id, ev_size, _log_pos, flags = unpack(mm, pos)
                if ev_size < C.HEADER_LEN or ev_size > _MAX_EVENT_SIZE:
                    raise BadInputError(f"{self.path}: corrupt event header at position {pos} (event size {ev_size})")
                end = pos + ev_size
                if end > size:
                    self._mark_partial(pos)
                    break
                if skip_until is not None and not first and pos < skip_until:
                    if end > skip_until:
                        raise PositionError(f"{self.path}: start position {skip_until} is inside an event "
                                            f"(the event at {pos} ends at {end})")
                    if type_code != C.FORMAT_DESCRIPTION_EVENT:
                        pos = end
                        continue
                raw = mm[pos:end]
                event = Event(type_code, ts, server_id, flags, pos, end, raw)
                if first or type_code == C.FORMAT_DESCRIPTION_EVENT:
                    # relay logs carry the source's FDE again mid-file; it governs what follows
                    self._read_fde(event)
                    has_crc = self.fde is not None and self.fde.has_crc32
                    first = False
                elif has_crc and crc32(memoryview(raw)[:-C.CRC_LEN]) != int.from_bytes(raw[-C.CRC_LEN:], "little"):
                    raise ChecksumError(f"{self.path}: {event.name} event at position {pos}: CRC32 checksum "
                                        "mismatch (corrupt binlog)")
                if type_code == C.ROTATE_EVENT and not flags & C.LOG_EVENT_ARTIFICIAL_F:
                    self.tail = FileTail(size, end, rotate_to=parse_rotate(self.payload(event))[1])
                elif type_code == C.STOP_EVENT:
                    self.tail = FileTail(size, end, stopped=True)
                pos = end
                yield event
            if skip_until is not None and skip_until > pos:
                raise PositionError(f"{self.path}: start position {skip_until} is beyond the end of the file ({pos})")

    def _mark_partial(self, pos: int) -> None:
        prev = self.tail
        self.tail = FileTail(self._size, pos, partial_event_at=pos,
                             rotate_to=prev.rotate_to if prev else None)

    def _read_fde(self, event: Event) -> None:
        where = f"{self.path}: {event.name} event at position {event.start}"
        if event.type_code != C.FORMAT_DESCRIPTION_EVENT:
            raise UnsupportedError(f"{self.path}: first event is {event.name}, not FORMAT_DESCRIPTION "
                                   "(binlog format before MySQL 5.0 is not supported)")
        fde = parse_format_description(event.raw)
        if fde.has_crc32:
            verify_fde_crc(event.raw, where)
        self.fde = fde
        event.info = fde
        if self.server_id is None:  # the file's own FDE (a relay log repeats its source's later)
            self.server_id = event.server_id
            if self.on_format is not None:
                self.on_format(self)

    def payload(self, event: Event) -> bytes:
        """The event body without header and checksum."""
        assert self.fde is not None
        # The FORMAT_DESCRIPTION keeps its trailer: its parser reads the checksum algorithm from it.
        return body_of(event.raw, self.fde.has_crc32 and event.type_code != C.FORMAT_DESCRIPTION_EVENT)
