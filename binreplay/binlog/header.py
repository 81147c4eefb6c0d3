"""Where an event's body, post-header and table id are: the one definition every module uses.

The FORMAT_DESCRIPTION event lists each event type's post-header length. A type past the
end of that list (a file from a server older than the event type) gets the length the
type's own layout fixes: 10 for v2 rows events (they carry an extra-data length), else 8.
"""

from __future__ import annotations

from binreplay.binlog import constants as C
from binreplay.model import Event, FormatDescription

V1_POST_HEADER = 8
V2_POST_HEADER = 10
_V2_TYPES = frozenset({C.WRITE_ROWS_EVENT, C.UPDATE_ROWS_EVENT, C.DELETE_ROWS_EVENT, C.PARTIAL_UPDATE_ROWS_EVENT,
                       C.WRITE_ROWS_COMPRESSED_EVENT, C.UPDATE_ROWS_COMPRESSED_EVENT,
                       C.DELETE_ROWS_COMPRESSED_EVENT})


def post_header_len(fde: FormatDescription, type_code: int) -> int:
    if len(fde.post_header_lengths) >= type_code:
        return fde.post_header_lengths[type_code - 1]
    return V2_POST_HEADER if type_code in _V2_TYPES else V1_POST_HEADER


def table_id_len(post_header_len: int) -> int:
    """Bytes of the table id TABLE_MAP and rows event bodies start with (their flags word follows):
    4 from servers before 5.1.4 (a post-header of 6 bytes), else 6."""
    return 4 if post_header_len == 6 else 6


def body_of(raw: bytes, has_crc: bool) -> bytes:
    """An event's bytes without its common header and (when the file has them) its checksum."""
    return raw[C.HEADER_LEN:len(raw) - (C.CRC_LEN if has_crc else 0)]


def event_body(ev: Event, fde: FormatDescription) -> bytes:
    """The event without its common header and checksum."""
    return body_of(ev.raw, fde.has_crc32)
