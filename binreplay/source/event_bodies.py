"""One file's events read in place, with the reader's one rule for their bodies: every length is
checked before it is used, and any failure to parse an event is bad input naming the file, the
position and the event type (never a struct.error, an IndexError or a traceback).

`FileEvents` is what the assembler (source/assembler.py) and the payload reader (source/payload.py)
know of the file they read: its bytes (`f.data`), its FORMAT_DESCRIPTION, and these helpers.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from binreplay.binlog import constants as C
from binreplay.binlog.header import body_of, post_header_len
from binreplay.errors import BadInputError, UnsupportedError
from binreplay.model import MariadbGtid

if TYPE_CHECKING:
    from binreplay.binlog.file import BinlogFile
    from binreplay.source.payload import PayloadFile

_MARIADB_GTID = struct.Struct("<QIB")   # sequence number, domain id, flags
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_PARSE_ERRORS = (struct.error, IndexError, ValueError, UnicodeError, zlib.error, OverflowError, KeyError)


class FileEvents:
    """The events of one file (or of one compressed transaction), read in place."""

    def __init__(self, f: BinlogFile | PayloadFile) -> None:
        self.f = f

    def parse_body(self, t: int, pos: int, end: int, parse: Callable[[bytes], Any]) -> Any:
        """`parse` of the event's body; any failure is bad input naming the file, position and type."""
        data = self.f.data
        fde = self.f.fde
        assert data is not None and fde is not None
        body = body_of(data[pos:end], fde.has_crc32)
        try:
            return parse(body)
        except (BadInputError, UnsupportedError) as exc:
            raise type(exc)(f"{self.f.path}: {C.event_name(t)} event at position {pos}: {exc}") from None
        except _PARSE_ERRORS as exc:
            self.bad(t, pos, f"its body cannot be read ({type(exc).__name__}: {exc})")

    def bad(self, t: int, pos: int, why: str) -> NoReturn:
        raise BadInputError(f"{self.f.path}: {C.event_name(t)} event at position {pos}: {why} (corrupt binlog?)")

    def rows_phl(self, t: int, pos: int) -> int:
        """A rows event type's post-header length, once per type and file: a type the file's server does
        not write (past its FORMAT_DESCRIPTION's table, or listed with no post-header) is refused."""
        fde = self.f.fde
        assert fde is not None
        if t > len(fde.post_header_lengths) or not fde.post_header_lengths[t - 1]:
            self.bad(t, pos, "the server that wrote the file does not write this event type")
        return self.phl(t)

    def phl(self, t: int) -> int:
        """An event type's post-header length, as the file's FORMAT_DESCRIPTION gives it."""
        fde = self.f.fde
        assert fde is not None
        return post_header_len(fde, t)

    def flags(self, pos: int) -> int:
        """The header flags of the event at `pos`."""
        data = self.f.data
        assert data is not None
        return struct.unpack_from("<H", data, pos + 17)[0]

    def mariadb_gtid(self, pos: int, end: int) -> MariadbGtid:
        """Its body read in place (one per transaction: no copy); any length it lacks is bad input."""
        data, fde = self.f.data, self.f.fde
        assert data is not None and fde is not None
        body_end = end - fde.crc_len
        at = pos + C.HEADER_LEN
        if at + 13 > body_end:
            self.bad(C.MARIADB_GTID_EVENT, pos, "its body is shorter than a GTID")
        seq_no, domain_id, flags = _MARIADB_GTID.unpack_from(data, at)
        commit_id = None
        if flags & C.FL_GROUP_COMMIT_ID:
            if at + 21 > body_end:
                self.bad(C.MARIADB_GTID_EVENT, pos, "its body is shorter than a GTID with a commit id")
            commit_id = _U64.unpack_from(data, at + 13)[0]
        return MariadbGtid(domain_id, _U32.unpack_from(data, pos + 5)[0], seq_no, flags, commit_id)


def xid(body: bytes) -> int:
    """An XID event's body: the server's transaction id (read only to check the body is whole)."""
    return struct.unpack_from("<Q", body, 0)[0]
