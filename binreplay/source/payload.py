"""MySQL's compressed transactions (TRANSACTION_PAYLOAD, binlog_transaction_compression=ON).

The event holds the rest of its transaction (everything after the GTID event) as zstd-compressed
events without checksums. They are decompressed within a fixed ceiling (never trusting the size
the event declares), given checksums when the file has them so they look like any other event,
and assembled by a nested `Assembler` over them. The transaction it makes is the GTID event from
the file followed by the inner events; each inner event's position is the payload event's.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from binreplay.binlog import constants as C
from binreplay.binlog import events as E
from binreplay.binlog.file import BinlogFile
from binreplay.errors import BadInputError, UnsupportedError
from binreplay.model import FormatDescription, Transaction

if TYPE_CHECKING:
    from binreplay.source.assembler import Assembler, OpenTransaction

MAX_PAYLOAD_BYTES = 1 << 30   # a decompressed transaction may not exceed what the server itself allows
_SIZE = struct.Struct("<I")
_CHUNK = 1 << 20               # decompressed this much at a time: memory follows the real output
# What a compressed transaction cannot hold: another transaction's start, another payload, file-level events.
_NOT_INNER = C.GTID_EVENTS | C.FILE_LEVEL_EVENTS | {C.TRANSACTION_PAYLOAD_EVENT}


class PayloadFile:
    """What an Assembler needs of a file, for the inner events of one TRANSACTION_PAYLOAD."""

    def __init__(self, outer: BinlogFile | PayloadFile, data: bytes) -> None:
        self.path: Path = outer.path
        self.index: int = outer.index
        self.name: str = outer.name
        self.fde: FormatDescription | None = outer.fde
        self.data: bytes | None = data


def assemble_payload(asm: Assembler, g: OpenTransaction, pos: int, end: int) -> Transaction:
    """The transaction a TRANSACTION_PAYLOAD event at `pos` completes (`g` holds its GTID event)."""
    t_payload = C.TRANSACTION_PAYLOAD_EVENT
    fde = asm.f.fde
    data = asm.f.data
    assert fde is not None and data is not None
    inner = asm.parse_body(t_payload, pos, end, lambda body: decompress(body, fde))
    nested = asm.nested(PayloadFile(asm.f, inner), g)
    if g.length is not None and end - g.start != g.length:
        asm.wrong_length(g, end)
    done = None
    for trx in nested.transactions(_inner_events(inner, lambda why: asm.bad(t_payload, pos, why))):
        if done is not None:   # the inner events are one transaction: never drop one of several
            asm.bad(t_payload, pos, "it holds more than one transaction")
        done = trx
    asm.group = None
    if done is None or done.end_pos != len(inner):
        asm.bad(t_payload, pos, "its inner events do not end with the end of its transaction")
    # The transaction as applied: the GTID event from the file, then the inner events.
    prefix = g.spans
    gtid_bytes = b"".join(data[s:e] for _t, s, e in prefix)
    shift = len(gtid_bytes)
    done.data = gtid_bytes + done.data
    done.spans = ([(t, s - g.start, e - g.start) for t, s, e in prefix]
                  + [(t, s + shift, e + shift) for t, s, e in done.spans])
    done.infos = {**g.infos, **{i + len(prefix): v for i, v in done.infos.items()}}
    done.base = 0
    done.positions = [s for _t, s, _e in prefix] + [pos] * (len(done.spans) - len(prefix))
    done.start_pos, done.end_pos = g.start, end
    done.file_index, done.file = asm.f.index, asm.f.name
    return done


def _inner_events(inner: bytes, bad: Callable[[str], NoReturn]) -> Iterator[tuple[int, int, int]]:
    """(type, start, end) of each inner event; `bad(why)` raises for what cannot be in a payload."""
    at = 0
    while at + C.HEADER_LEN <= len(inner):
        size = _SIZE.unpack_from(inner, at + 9)[0]
        if size < C.HEADER_LEN or at + size > len(inner):
            bad(f"an inner event at offset {at} has size {size}")
        t = inner[at + 4]
        if t in _NOT_INNER:
            bad(f"it holds a {C.event_name(t)} event")
        yield t, at, at + size
        at += size
    if at != len(inner):
        bad("its last inner event is cut short")


def decompress(body: bytes, fde: FormatDescription) -> bytes:
    """TRANSACTION_PAYLOAD body -> its inner events (with checksums if the file has them)."""
    compression, size, offset = E.parse_payload_header(body)
    if size > MAX_PAYLOAD_BYTES:
        raise BadInputError(f"declares {size} uncompressed bytes, more than {MAX_PAYLOAD_BYTES}")
    data: bytes | bytearray = body[offset:]
    if compression == 0:
        import zstandard  # a declared dependency

        try:
            # Streamed with a ceiling: never trust the declared size for the allocation.
            reader = zstandard.ZstdDecompressor().stream_reader(data)
            out = bytearray()
            while len(out) <= size:
                chunk = reader.read(min(_CHUNK, size + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
            data = out
        except zstandard.ZstdError as exc:
            raise BadInputError(f"corrupt compressed transaction: {exc}") from None
        if len(data) != size:
            raise BadInputError(f"decompresses to {len(data)} bytes, not the {size} it declares")
    elif compression != 255:
        raise UnsupportedError(f"unknown compression type {compression}")
    if not fde.has_crc32:
        return bytes(data)
    out = bytearray()
    at = 0
    while at + C.HEADER_LEN <= len(data):
        size_ = _SIZE.unpack_from(data, at + 9)[0]
        if size_ < C.HEADER_LEN or at + size_ > len(data):
            raise BadInputError(f"an inner event at offset {at} has size {size_}")
        raw = bytearray(data[at:at + size_])
        struct.pack_into("<I", raw, 9, size_ + C.CRC_LEN)
        out += raw
        out += _SIZE.pack(zlib.crc32(raw))
        at += size_
    if at != len(data):
        raise BadInputError("its last inner event is cut short")
    return bytes(out)
