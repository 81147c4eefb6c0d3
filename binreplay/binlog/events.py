"""Parsers for the event bodies binreplay acts on.

Each takes the body (header and checksum removed) and returns a typed value
from `binreplay.model`. Row events are never decoded here: they are re-sent
to the target byte for byte.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

from binreplay.binlog import constants as C
from binreplay.errors import BadInputError, UnsupportedError
from binreplay.model import (
    FormatDescription,
    IntvarInfo,
    QueryContext,
    QueryInfo,
    RandInfo,
    UserVarInfo,
)

MAX_DECOMPRESSED = 1 << 30   # a decompressed event may not exceed what the server itself allows (1 GiB)

_T = TypeVar("_T")


BODY_ERRORS = (struct.error, IndexError, ValueError, OverflowError, zlib.error)


def body_parser(what: str) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """A parser of one event body: whatever it cannot read (a length past the end, a value that
    cannot be) is bad input, never a Python error. The one rule of the reader: every length is
    checked before it is used (`need`); this catches what a check missed."""
    def wrap(fn: Callable[..., _T]) -> Callable[..., _T]:
        @functools.wraps(fn)
        def parse(*args: Any, **kw: Any) -> _T:
            try:
                return fn(*args, **kw)
            except BODY_ERRORS as exc:
                raise BadInputError(f"corrupt {what} ({type(exc).__name__}: {exc})") from None
        return parse
    return wrap


def _version_tuple(version: str) -> tuple[int, int, int]:
    head = version.split("-")[0]
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in head.split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return major, minor, patch


def writes_gtids(fde: FormatDescription) -> bool:
    """Every transaction starts with a GTID event (MariaDB 10+, MySQL 5.7.6+ anonymous ones)."""
    version = _version_tuple(fde.server_version)
    return version >= (10, 0, 0) if fde.flavor == "mariadb" else version >= (5, 7, 6)


def parse_format_description(raw: bytes, where: str = "FORMAT_DESCRIPTION event") -> FormatDescription:
    """The whole FORMAT_DESCRIPTION event (header included) -> what it says about the file."""
    body = raw[C.HEADER_LEN:]
    if len(body) < 57:
        raise BadInputError(f"{where}: {len(body)} bytes of body, a format description has at least 57")
    binlog_version = struct.unpack_from("<H", body, 0)[0]
    if binlog_version != 4:
        raise BadInputError(f"{where}: binlog version {binlog_version}, not 4")
    server_version = body[2:52].split(b"\0", 1)[0].decode("ascii", "replace")
    create_ts = struct.unpack_from("<I", body, 52)[0]
    header_len = body[56]
    if header_len != C.HEADER_LEN:
        raise BadInputError(f"{where}: event headers of {header_len} bytes, not {C.HEADER_LEN}")
    rest = body[57:]
    if len(rest) > 512:   # one byte per event type: a few hundred at most
        raise BadInputError(f"{where}: {len(rest)} bytes of post-header lengths, not a format description")
    is_mariadb = "mariadb" in server_version.lower()
    version = _version_tuple(server_version)
    # Servers that know about checksums (MySQL 5.6.1+, MariaDB 5.3+) end the FDE with the
    # algorithm byte and a 4-byte CRC, whatever the algorithm (the CRC is always written).
    trailer = version >= ((5, 3, 0) if is_mariadb else (5, 6, 1))
    if trailer:
        if len(rest) < 5:
            raise BadInputError(f"{where}: the checksum trailer is missing")
        post_header_lengths, checksum_alg = rest[:-5], rest[-5]
    else:
        post_header_lengths, checksum_alg = rest, 0
    if checksum_alg not in (0, 1, 255):
        raise BadInputError(f"{where}: unknown checksum algorithm {checksum_alg}")
    if checksum_alg == 255:
        checksum_alg = 0  # undefined: written by a server that did not compute checksums
    _check_post_headers(post_header_lengths, where)
    return FormatDescription(binlog_version, server_version, create_ts, header_len,
                             bytes(post_header_lengths), checksum_alg, bytes(raw), trailer)


# Post-header lengths binreplay relies on (it reads these layouts): every server since MySQL 5.1.4
# and MariaDB 5.1 writes exactly these (0: the type is not written, e.g. v1 rows in MySQL 9).
_ROWS_V1 = (C.WRITE_ROWS_EVENT_V1, C.UPDATE_ROWS_EVENT_V1, C.DELETE_ROWS_EVENT_V1, C.WRITE_ROWS_COMPRESSED_EVENT_V1,
            C.UPDATE_ROWS_COMPRESSED_EVENT_V1, C.DELETE_ROWS_COMPRESSED_EVENT_V1)
_ROWS_V2 = (C.WRITE_ROWS_EVENT, C.UPDATE_ROWS_EVENT, C.DELETE_ROWS_EVENT, C.PARTIAL_UPDATE_ROWS_EVENT,
            C.WRITE_ROWS_COMPRESSED_EVENT, C.UPDATE_ROWS_COMPRESSED_EVENT, C.DELETE_ROWS_COMPRESSED_EVENT)
_POST_HEADERS: dict[int, tuple[int, ...]] = {
    C.QUERY_EVENT: (13,), C.QUERY_COMPRESSED_EVENT: (13,), C.ROTATE_EVENT: (8,), C.TABLE_MAP_EVENT: (6, 8),
    **{t: (0, 6, 8) for t in _ROWS_V1}, **{t: (0, 10) for t in _ROWS_V2},
}


def _check_post_headers(lengths: bytes, where: str) -> None:
    for t, allowed in _POST_HEADERS.items():
        if len(lengths) >= t and lengths[t - 1] not in allowed:
            raise BadInputError(f"{where}: {C.event_name(t)} events have a post-header of {lengths[t - 1]} bytes, "
                                f"not {' or '.join(map(str, allowed))}: not a format description binreplay can read")


@body_parser("ROTATE event")
def parse_rotate(body: bytes) -> tuple[int, str]:
    need(body, 8, "the position")
    pos = struct.unpack_from("<Q", body, 0)[0]
    return pos, bytes(body[8:]).decode("utf-8", "replace")


def read_packed_int(buf: bytes, offset: int) -> tuple[int, int]:
    """MySQL length-encoded integer -> (value, new offset); one that runs past `buf` is bad input."""
    if offset >= len(buf):
        raise BadInputError("a length-encoded integer is missing (the event ends first)")
    first = buf[offset]
    if first < 251:
        return first, offset + 1
    width = _PACKED_WIDTH.get(first)
    if width is None:
        raise BadInputError(f"invalid packed integer prefix {first:#x}")
    end = offset + 1 + width
    if end > len(buf):
        raise BadInputError("a length-encoded integer runs past the end of the event")
    return int.from_bytes(buf[offset + 1:end], "little"), end


_PACKED_WIDTH = {252: 2, 253: 3, 254: 8}


def need(buf: bytes, end: int, what: str) -> None:
    """The body must hold `end` bytes: every length is checked before it is used."""
    if end > len(buf):
        raise BadInputError(f"{what} runs past the end of the event ({end} > {len(buf)} bytes)")


# --- QUERY -----------------------------------------------------------------

_QUERY_POST_HEADER = struct.Struct("<IIBHH")  # thread_id, exec_time, db_len, error_code, status_vars_len


def _status_vars(buf: bytes) -> QueryContext:
    values: dict[str, Any] = {}
    pos, end = 0, len(buf)
    while pos < end:
        code = buf[pos]
        pos += 1
        if code == 0:
            values["flags2"], pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif code == 1:
            values["sql_mode"], pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif code == 2:  # Q_CATALOG_CODE (5.0.0-5.0.3): len, str, \0
            pos += buf[pos] + 2
        elif code == 3:
            values["auto_increment"], pos = struct.unpack_from("<HH", buf, pos), pos + 4
        elif code == 4:
            values["charset"], pos = struct.unpack_from("<HHH", buf, pos), pos + 6
        elif code == 5:
            n = buf[pos]
            values["time_zone"], pos = buf[pos + 1:pos + 1 + n].decode("ascii", "replace"), pos + 1 + n
        elif code == 6:  # Q_CATALOG_NZ_CODE
            pos += buf[pos] + 1
        elif code == 7:
            values["lc_time_names"], pos = struct.unpack_from("<H", buf, pos)[0], pos + 2
        elif code == 8:
            values["charset_database"], pos = struct.unpack_from("<H", buf, pos)[0], pos + 2
        elif code == 9:  # Q_TABLE_MAP_FOR_UPDATE_CODE
            pos += 8
        elif code == 10:  # Q_MASTER_DATA_WRITTEN_CODE
            pos += 4
        elif code == 11:  # Q_INVOKER: user, host (definer of the statement)
            pos += buf[pos] + 1
            pos += buf[pos] + 1
        elif code == 12:  # Q_UPDATED_DB_NAMES (MySQL)
            count, pos = buf[pos], pos + 1
            names = []
            if count != 254:  # OVER_MAX_DBS_IN_EVENT_MTS: too many to list
                for _ in range(count):
                    stop = buf.index(b"\0", pos)
                    names.append(buf[pos:stop].decode("utf-8", "replace"))
                    pos = stop + 1
            values["updated_db_names"] = tuple(names)
        elif code == 13:  # Q_MICROSECONDS (MySQL)
            values["microseconds"], pos = int.from_bytes(buf[pos:pos + 3], "little"), pos + 3
        elif code in (14, 15):  # Q_COMMIT_TS (never written), Q_COMMIT_TS2
            pos += 8
        elif code == 16:
            values["explicit_defaults_for_timestamp"], pos = buf[pos], pos + 1
        elif code == 17:  # Q_DDL_LOGGED_WITH_XID
            values["xid"], pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif code == 18:
            values["default_collation_for_utf8mb4"], pos = struct.unpack_from("<H", buf, pos)[0], pos + 2
        elif code == 19:
            values["sql_require_primary_key"], pos = buf[pos], pos + 1
        elif code == 20:
            values["default_table_encryption"], pos = buf[pos], pos + 1
        elif code == 128:  # Q_HRNOW (MariaDB): microseconds of the timestamp
            values["microseconds"], pos = int.from_bytes(buf[pos:pos + 3], "little"), pos + 3
        elif code == 129:  # Q_XID (MariaDB)
            values["xid"], pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif code == 130:  # Q_GTID_FLAGS3 (MariaDB): + sequence number of a START ALTER
            flags3, pos = buf[pos], pos + 1
            values["gtid_flags3"] = flags3
            if flags3 & (4 | 8):  # FL_COMMIT_ALTER_E1 | FL_ROLLBACK_ALTER_E1
                pos += 8
        elif code == 131:  # Q_CHARACTER_SET_COLLATIONS (MariaDB 11.2+): count, then 4 bytes each
            pos += 1 + 4 * buf[pos]
        else:
            # Codes carry no length, so nothing after an unknown one can be read; the server
            # itself stops at that point too. Keep what was understood.
            break
    if pos > end:
        raise BadInputError(f"status variables run past their length ({pos} > {end} bytes)")
    return QueryContext(**values)


def parse_query(body: bytes, post_header_len: int, compressed: bool = False) -> QueryInfo:
    # One per statement: the body_parser net inline (a try costs nothing until it catches).
    try:
        if len(body) < 13 or len(body) < post_header_len:
            raise BadInputError(f"the post-header runs past the end of the event ({len(body)} bytes)")
        thread_id, exec_time, db_len, error_code, sv_len = _QUERY_POST_HEADER.unpack_from(body, 0)
        sv_start = post_header_len
        db_start = sv_start + sv_len
        db_end = db_start + db_len
        if db_end >= len(body):
            raise BadInputError(f"the status variables and database name run past the end of the event "
                                f"({db_end + 1} > {len(body)} bytes)")
        if body[db_end] != 0:
            raise BadInputError("the database name is not NUL-terminated")
        context = _status_vars(body[sv_start:db_start])
        db = body[db_start:db_end].decode("utf-8", "replace")
        sql = body[db_end + 1:]
        if compressed:
            sql = decompress_mariadb(sql)
        return QueryInfo(thread_id, exec_time, error_code, db, bytes(sql), context)
    except BODY_ERRORS as exc:
        raise BadInputError(f"corrupt QUERY event ({type(exc).__name__}: {exc})") from None


@body_parser("compressed event")
def decompress_mariadb(data: bytes) -> bytes:
    """MariaDB log_bin_compress: 1 header byte (0x80 | n), n bytes of length, then zlib; the output
    never grows past the length the header declares (itself at most 1 GiB)."""
    need(data, 1, "the compression header")
    header = data[0]
    n = header & 0x07
    if not header & 0x80 or n == 0 or n > 4:
        raise BadInputError("corrupt compressed event header")
    need(data, 1 + n, "the uncompressed length")
    length = int.from_bytes(data[1:1 + n], "big")
    if length > MAX_DECOMPRESSED:
        raise BadInputError(f"declares {length} uncompressed bytes, more than {MAX_DECOMPRESSED}")
    inflate = zlib.decompressobj()
    out = inflate.decompress(data[1 + n:], length + 1)
    if len(out) != length:
        raise BadInputError("compressed event length mismatch")
    return out


# --- the rest --------------------------------------------------------------

@body_parser("INTVAR event")
def parse_intvar(body: bytes) -> IntvarInfo:
    need(body, 9, "the value")
    kind = body[0]
    value = struct.unpack_from("<Q", body, 1)[0]  # all 8 bytes (INSERT_ID may exceed 2^32)
    return IntvarInfo(kind, value)


@body_parser("RAND event")
def parse_rand(body: bytes) -> RandInfo:
    need(body, 16, "the seeds")
    return RandInfo(*struct.unpack_from("<QQ", body, 0))


STRING_RESULT, REAL_RESULT, INT_RESULT, ROW_RESULT, DECIMAL_RESULT = 0, 1, 2, 3, 4


@body_parser("USER_VAR event")
def parse_user_var(body: bytes) -> UserVarInfo:
    """USER_VAR -> the variable name and a typed value the SQL generator renders."""
    need(body, 4, "the name length")
    name_len = struct.unpack_from("<I", body, 0)[0]
    need(body, 4 + name_len + 1, "the name")
    name = bytes(body[4:4 + name_len])
    pos = 4 + name_len
    is_null = body[pos]
    pos += 1
    if is_null:
        return UserVarInfo(name, STRING_RESULT, 63, None, False)
    need(body, pos + 9, "the value header")
    value_type = body[pos]
    charset = struct.unpack_from("<I", body, pos + 1)[0]
    value_len = struct.unpack_from("<I", body, pos + 5)[0]
    pos += 9
    need(body, pos + value_len, "the value")
    value = bytes(body[pos:pos + value_len])
    pos += value_len
    # Only integer values are followed by a flags byte (1 = unsigned); older servers omit it.
    unsigned = value_type == INT_RESULT and pos < len(body) and bool(body[pos] & 1)
    if value_type not in (STRING_RESULT, REAL_RESULT, INT_RESULT, DECIMAL_RESULT):
        raise UnsupportedError(f"user variable @{name!r} has unsupported type {value_type}")
    return UserVarInfo(name, value_type, charset, value, unsigned)


@body_parser("TRANSACTION_PAYLOAD event")
def parse_payload_header(body: bytes) -> tuple[int, int, int]:
    """TRANSACTION_PAYLOAD header fields -> (compression type, uncompressed size, offset of data)."""
    pos = 0
    compression = 0
    uncompressed = 0
    while pos < len(body):
        field_type, pos = read_packed_int(body, pos)
        if field_type == 0:  # end of header
            break
        length, pos = read_packed_int(body, pos)
        need(body, pos + length, "a header field")
        value, _ = read_packed_int(body[:pos + length], pos) if field_type in (2, 3) else (0, pos)
        pos += length
        if field_type == 2:
            compression = value
        elif field_type == 3:
            uncompressed = value
    return compression, uncompressed, pos
