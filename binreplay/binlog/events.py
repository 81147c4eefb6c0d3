"""Parsers for the event bodies binreplay acts on.

Each takes the body (header and checksum removed) and returns a typed value
from `binreplay.model`. Row events are never decoded here: they are re-sent
to the target byte for byte.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from binreplay.binlog import constants as C
from binreplay.binlog import serialization as S
from binreplay.errors import BadInputError, UnsupportedError
from binreplay.model import (
    FormatDescription,
    IntvarInfo,
    MariadbGtid,
    MysqlGtid,
    QueryContext,
    QueryInfo,
    RandInfo,
    UserVarInfo,
)


def _version_tuple(version: str) -> tuple[int, int, int]:
    head = version.split("-")[0]
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in head.split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return major, minor, patch


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
    return FormatDescription(binlog_version, server_version, create_ts, header_len,
                             bytes(post_header_lengths), checksum_alg, bytes(raw), trailer)


def parse_rotate(body: bytes) -> tuple[int, str]:
    pos = struct.unpack_from("<Q", body, 0)[0]
    return pos, body[8:].decode("utf-8", "replace")


def read_packed_int(buf: bytes, offset: int) -> tuple[int, int]:
    """MySQL length-encoded integer -> (value, new offset)."""
    first = buf[offset]
    if first < 251:
        return first, offset + 1
    if first == 252:
        return struct.unpack_from("<H", buf, offset + 1)[0], offset + 3
    if first == 253:
        return int.from_bytes(buf[offset + 1:offset + 4], "little"), offset + 4
    if first == 254:
        return struct.unpack_from("<Q", buf, offset + 1)[0], offset + 9
    raise BadInputError(f"invalid packed integer prefix {first:#x}")


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
    return QueryContext(**values)


def parse_query(body: bytes, post_header_len: int, compressed: bool = False) -> QueryInfo:
    thread_id, exec_time, db_len, error_code, sv_len = _QUERY_POST_HEADER.unpack_from(body, 0)
    if post_header_len < 13:
        sv_len = 0
    sv_start = post_header_len
    context = _status_vars(body[sv_start:sv_start + sv_len])
    db_start = sv_start + sv_len
    db = body[db_start:db_start + db_len].decode("utf-8", "replace")
    sql = body[db_start + db_len + 1:]
    if compressed:
        sql = decompress_mariadb(sql)
    return QueryInfo(thread_id, exec_time, error_code, db, bytes(sql), context)


def decompress_mariadb(data: bytes) -> bytes:
    """MariaDB log_bin_compress: 1 header byte (0x80 | n), n bytes of length, then zlib."""
    header = data[0]
    n = header & 0x07
    if not header & 0x80 or n == 0 or n > 4:
        raise BadInputError("corrupt compressed event header")
    length = int.from_bytes(data[1:1 + n], "big")
    out = zlib.decompress(data[1 + n:])
    if len(out) != length:
        raise BadInputError("compressed event length mismatch")
    return out


# --- GTIDs -------------------------------------------------------------------

def parse_mariadb_gtid(body: bytes, server_id: int) -> MariadbGtid:
    seq_no, domain_id, flags = struct.unpack_from("<QIB", body, 0)
    commit_id = None
    if flags & C.FL_GROUP_COMMIT_ID:
        commit_id = struct.unpack_from("<Q", body, 13)[0]
    return MariadbGtid(domain_id, server_id, seq_no, flags, commit_id)


@dataclass(frozen=True)
class TaggedGtidEvent:
    """Every field of a GTID_TAGGED event (MySQL 8.3+: a GTID with a tag, uuid:tag:gno).

    Optional fields the writer left out take the value the server gives them: the original
    commit timestamp and server version default to the immediate ones (the event was written
    where the transaction ran), the commit group ticket to 0 (unused).
    """

    flags: int
    sid: str
    gno: int
    tag: str
    last_committed: int | None
    sequence_number: int | None
    immediate_commit_timestamp: int | None  # microseconds since the epoch
    original_commit_timestamp: int | None
    transaction_length: int | None          # bytes, this event included
    immediate_server_version: int | None    # e.g. 90600 for 9.6.0
    original_server_version: int | None
    commit_group_ticket: int

    @property
    def gtid(self) -> MysqlGtid:
        return MysqlGtid(self.sid, self.gno, self.tag or None, self.last_committed, self.sequence_number)


# Field ids 0.. in the order MySQL declares them (Gtid_event::define_fields); a newer server
# may append fields, which are skipped.
_TAGGED_GTID_LAYOUT = (
    ("flags", S.uint(8)),
    ("sid", S.byte_array(16)),
    ("gno", S.sint(64)),
    ("tag", S.string(32)),
    ("last_committed", S.sint(64)),
    ("sequence_number", S.sint(64)),
    ("immediate_commit_timestamp", S.uint(64)),
    ("original_commit_timestamp", S.uint(64)),
    ("transaction_length", S.uint(64)),
    ("immediate_server_version", S.uint(32)),
    ("original_server_version", S.uint(32)),
    ("commit_group_ticket", S.uint(64)),
)
_TAG = re.compile(rb"[a-z_][a-z0-9_]{0,31}", re.IGNORECASE)
_GNO_END = 2**63 - 1  # exclusive, as in the server


def parse_tagged_gtid(body: bytes) -> TaggedGtidEvent:
    """GTID_TAGGED body (without header and checksum) -> its fields."""
    what = "GTID_TAGGED event"
    m = S.read_message(body, _TAGGED_GTID_LAYOUT, what)
    sid, gno, tag = m.get_bytes("sid"), m.get_int("gno"), m.get_bytes("tag")
    if sid is None or gno is None or tag is None:
        raise BadInputError(f"corrupt {what}: the uuid, number or tag is missing")
    if tag and not _TAG.fullmatch(tag):
        raise BadInputError(f"corrupt {what}: {tag!r} is not a GTID tag")
    if not 1 <= gno < _GNO_END:
        raise BadInputError(f"corrupt {what}: GNO {gno} is out of range")
    immediate_ts = m.get_int("immediate_commit_timestamp")
    immediate_version = m.get_int("immediate_server_version")
    return TaggedGtidEvent(
        flags=m.get_int("flags", 0) or 0,
        sid=str(uuid.UUID(bytes=sid)),
        gno=gno,
        tag=tag.decode("ascii").lower(),  # tags compare case-insensitively; servers write lower case
        last_committed=m.get_int("last_committed"),
        sequence_number=m.get_int("sequence_number"),
        immediate_commit_timestamp=immediate_ts,
        original_commit_timestamp=m.get_int("original_commit_timestamp", immediate_ts),
        transaction_length=m.get_int("transaction_length"),
        immediate_server_version=immediate_version,
        original_server_version=m.get_int("original_server_version", immediate_version),
        commit_group_ticket=m.get_int("commit_group_ticket", 0) or 0,
    )


def parse_mysql_gtid(body: bytes, type_code: int) -> MysqlGtid:
    if type_code == C.GTID_TAGGED_LOG_EVENT:
        return parse_tagged_gtid(body).gtid
    sid_bytes = body[1:17]
    gno = struct.unpack_from("<q", body, 17)[0]
    last_committed = sequence_number = None
    if len(body) >= 42 and body[25] == 2:  # LOGICAL_TIMESTAMP_TYPECODE
        last_committed, sequence_number = struct.unpack_from("<qq", body, 26)
    sid = None if type_code == C.ANONYMOUS_GTID_LOG_EVENT else str(uuid.UUID(bytes=bytes(sid_bytes)))
    return MysqlGtid(sid, gno, None, last_committed, sequence_number)


# --- the rest --------------------------------------------------------------

def parse_intvar(body: bytes) -> IntvarInfo:
    kind = body[0]
    value = struct.unpack_from("<Q", body, 1)[0]  # all 8 bytes (INSERT_ID may exceed 2^32)
    return IntvarInfo(kind, value)


def parse_rand(body: bytes) -> RandInfo:
    return RandInfo(*struct.unpack_from("<QQ", body, 0))


STRING_RESULT, REAL_RESULT, INT_RESULT, ROW_RESULT, DECIMAL_RESULT = 0, 1, 2, 3, 4


def parse_user_var(body: bytes) -> UserVarInfo:
    """USER_VAR -> the variable name and a typed value the SQL generator renders."""
    name_len = struct.unpack_from("<I", body, 0)[0]
    name = bytes(body[4:4 + name_len])
    pos = 4 + name_len
    is_null = body[pos]
    pos += 1
    if is_null:
        return UserVarInfo(name, STRING_RESULT, 63, None, False)
    value_type = body[pos]
    charset = struct.unpack_from("<I", body, pos + 1)[0]
    value_len = struct.unpack_from("<I", body, pos + 5)[0]
    pos += 9
    value = bytes(body[pos:pos + value_len])
    pos += value_len
    # Only integer values are followed by a flags byte (1 = unsigned); older servers omit it.
    unsigned = value_type == INT_RESULT and pos < len(body) and bool(body[pos] & 1)
    if value_type not in (STRING_RESULT, REAL_RESULT, INT_RESULT, DECIMAL_RESULT):
        raise UnsupportedError(f"user variable @{name!r} has unsupported type {value_type}")
    return UserVarInfo(name, value_type, charset, value, unsigned)


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
        value, _ = read_packed_int(body, pos)
        pos += length
        if field_type == 2:
            compression = value
        elif field_type == 3:
            uncompressed = value
    return compression, uncompressed, pos
