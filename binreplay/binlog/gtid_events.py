"""Parsers for GTID event bodies: MariaDB's GTID event, MySQL's GTID / ANONYMOUS_GTID events (with
the transaction length MySQL 8 writes) and MySQL 8.3+'s GTID_TAGGED event, each read with the
body rule of binlog/events.py (every length checked; a failure is bad input)."""

from __future__ import annotations

import re
import struct
import uuid
from dataclasses import dataclass

from binreplay.binlog import constants as C
from binreplay.binlog import serialization as S
from binreplay.binlog.events import BODY_ERRORS, body_parser, need, read_packed_int
from binreplay.errors import BadInputError
from binreplay.model import MariadbGtid, MysqlGtid


@body_parser("MARIADB_GTID event")
def parse_mariadb_gtid(body: bytes, server_id: int) -> MariadbGtid:
    need(body, 13, "the GTID")
    seq_no, domain_id, flags = struct.unpack_from("<QIB", body, 0)
    commit_id = None
    if flags & C.FL_GROUP_COMMIT_ID:
        need(body, 21, "the commit id")
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


@body_parser("GTID event")
def parse_mysql_gtid(body: bytes, type_code: int) -> MysqlGtid:
    return parse_mysql_gtid_event(body, type_code)[0]


def parse_mysql_gtid_event(body: bytes, type_code: int) -> tuple[MysqlGtid, int | None]:
    """A MySQL GTID, anonymous GTID or tagged GTID event -> the GTID and the length in bytes of its
    transaction, this event included (written since MySQL 8.0.2; None before)."""
    # One per transaction: the body_parser net inline (a try costs nothing until it catches).
    try:
        if type_code == C.GTID_TAGGED_LOG_EVENT:
            tagged = parse_tagged_gtid(body)
            return tagged.gtid, tagged.transaction_length
        n = len(body)
        if n < 25:
            raise BadInputError(f"the GTID runs past the end of the event (25 > {n} bytes)")
        gno = _GNO.unpack_from(body, 17)[0]
        last_committed = sequence_number = length = None
        if n >= 42 and body[25] == 2:  # LOGICAL_TIMESTAMP_TYPECODE
            last_committed, sequence_number = _CLOCK.unpack_from(body, 26)
            # Then the commit timestamp (7 bytes; its top bit says the original one follows, 7
            # more) and the transaction's length (a packed integer); older servers stop earlier.
            at = 56 if n > 49 and body[48] & 0x80 else 49
            if n > at:
                first = body[at]
                if first < 251:
                    length = first
                elif first == 252 and n >= at + 3:   # the usual one: 251 bytes to 64 KiB
                    length = body[at + 1] | body[at + 2] << 8
                else:
                    length = read_packed_int(body, at)[0]
        if type_code == C.ANONYMOUS_GTID_LOG_EVENT:
            return MysqlGtid(None, gno, None, last_committed, sequence_number), length
        if not 1 <= gno < _GNO_END:
            raise BadInputError(f"corrupt GTID event: GNO {gno} is out of range")
        return MysqlGtid(str(uuid.UUID(bytes=bytes(body[1:17]))), gno, None, last_committed, sequence_number), length
    except BODY_ERRORS as exc:
        raise BadInputError(f"corrupt GTID event ({type(exc).__name__}: {exc})") from None


_GNO, _CLOCK = struct.Struct("<q"), struct.Struct("<qq")
