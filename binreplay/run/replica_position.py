"""Where the target stands as a replica of the source once a replay ends: the source's binlog
coordinates of the resume point and its GTID state there, with the statements that attach the
target to the source from that point on.

The GTID state is the source's own at that position (not only what this run applied): the
GTID list (MariaDB GTID_LIST) or set (MySQL PREVIOUS_GTIDS) the file starts with, plus every
GTID the file logged before the position. Only the one file is read, once, at the end of a run.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog.file import RELEASE_EVERY, BinlogFile, open_regular
from binreplay.binlog.gtid_events import parse_mariadb_gtid, parse_mysql_gtid
from binreplay.errors import BadInputError
from binreplay.model import BinlogPosition, FormatDescription, MariadbGtid, Transaction
from binreplay.server.sql import quote_string
from binreplay.signals import Background
from binreplay.source.gtid import MysqlGtidSet, format_mariadb_gtid_list

_HEADER_FIELDS = struct.Struct("<BII")         # type, server id, event size (from offset 4 of a header)
_GTID_LIST_ENTRY = struct.Struct("<IIQ")      # domain id, server id, sequence number
_SID_INTERVALS = struct.Struct("<16sQ")       # uuid, number of intervals
_INTERVAL = struct.Struct("<QQ")              # first, end (exclusive)


@dataclass(frozen=True)
class ReplicaPosition:
    """The point a replica of the source continues from after this replay."""

    flavor: str                        # of the binlogs: "mariadb" or "mysql"
    binlog_file: str
    position: int
    gtid_state: str | None             # MariaDB gtid_slave_pos / MySQL gtid_executed there ('' = none yet)
    statements: list[str] = field(default_factory=list)   # what to run on the target, in order

    def describe(self) -> str:
        return "; ".join(self.statements)


class FileGtids:
    """The GTIDs of one file's transactions as the run reads them (one step per transaction, none per
    event), so the state at the end of a run needs no second pass over the file: only the part
    before where the run began reading it is walked (`replica_position`)."""

    def __init__(self, file_index: int, read_from: int, path: Path | None = None) -> None:
        self.file_index = file_index
        self.read_from = read_from          # where the run began reading this file
        self.end = read_from                # the end of the last transaction added
        self.mariadb: dict[int, MariadbGtid] = {}
        self.mysql = MysqlGtidSet()
        # The part before `read_from` is walked on a thread while the run applies (measured: 0.3 s for
        # the 155 MB before a benchmark's start point, which would otherwise come after the last commit).
        self.prefix: Background[list[StateEvent]] | None = None
        if path is not None and read_from > 4:
            self.prefix = Background(lambda: list(_state_events(path, read_from, _format_description(path).has_crc32)),
                                     "replica-position").start()

    def add(self, trx: Transaction) -> None:
        g = trx.gtid
        if isinstance(g, MariadbGtid):
            self.mariadb[g.domain_id] = g
        elif g is not None:
            self.mysql.add(g)
        self.end = trx.end_pos


def replica_position(path: Path, mark: BinlogPosition, seen: FileGtids | None = None) -> ReplicaPosition:
    """The source's coordinates and GTID state at `mark` (a transaction boundary of `path`). `seen`: what
    the run read of that file, when it read it up to the mark (else the file is read up to the mark)."""
    fde = _format_description(path)
    if seen is not None and not (seen.file_index == mark.file_index and seen.end == mark.pos):
        seen = None
    mariadb: dict[int, MariadbGtid] = {}
    mysql: MysqlGtidSet | None = None
    events = (seen.prefix.result() if seen is not None and seen.prefix is not None
              else _state_events(path, seen.read_from if seen else mark.pos, fde.has_crc32))
    for type_code, server_id, body in events:
        if type_code == C.GTID_LIST_EVENT:
            mariadb = _gtid_list(body)
        elif type_code == C.MARIADB_GTID_EVENT:
            g = parse_mariadb_gtid(body, server_id)
            mariadb[g.domain_id] = g
        elif type_code == C.PREVIOUS_GTIDS_LOG_EVENT:
            mysql = _previous_gtids(body)
        elif mysql is not None:   # a MySQL GTID event
            mysql.add(parse_mysql_gtid(body, type_code))
    if seen is not None:
        mariadb.update(seen.mariadb)
        if mysql is not None and seen.mysql:
            mysql = MysqlGtidSet(",".join(s for s in (str(mysql), str(seen.mysql)) if s))
    if fde.flavor == "mysql":
        state = str(mysql) if mysql is not None else None
        return ReplicaPosition(fde.flavor, mark.file, mark.pos, state, _mysql_statements(mark, state))
    state = format_mariadb_gtid_list(mariadb)
    return ReplicaPosition(fde.flavor, mark.file, mark.pos, state, _mariadb_statements(mark, state))


def _format_description(path: Path) -> FormatDescription:
    f = BinlogFile(path)
    for _event in f.scan():
        break   # the first event is the FORMAT_DESCRIPTION (scan checks it)
    if f.fde is None:
        raise BadInputError(f"{path.name}: no FORMAT_DESCRIPTION event")
    return f.fde


# (type, server id, body) of an event that makes the GTID state.
StateEvent = tuple[int, int, bytes]


def _state_events(path: Path, until: int, has_crc: bool) -> Iterator[StateEvent]:
    """(type, server id, body) of the events that make the GTID state, before `until`. The run read and
    checked these events already: only their headers are walked here (measured: a tenth of the time of
    the checking framing loop, about 0.5 s for 1.5 million events)."""
    with open_regular(path, "binlog file") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        header, wanted, trailer = _HEADER_FIELDS.unpack_from, _STATE_EVENTS, C.CRC_LEN if has_crc else 0
        pos, end, released = 4, len(mm), 0
        while pos < end:
            if pos - released >= RELEASE_EVERY:
                # Pages behind us go back, as in the framing loop: a walk over a large prefix would
                # otherwise count it all in the run's peak RSS (measured: +75 MB over 155 MB).
                upto = pos - pos % mmap.PAGESIZE
                mm.madvise(mmap.MADV_DONTNEED, released, upto - released)
                released = upto
            type_code, server_id, size = header(mm, pos + 4)
            if pos >= until and type_code not in _FILE_HEAD:
                break   # (the events that open a file are walked even when `until` is before them)
            if size < C.HEADER_LEN or pos + size > end:
                raise BadInputError(f"{path.name}: an event at {pos} runs past the end of the file")
            if type_code in wanted:
                yield type_code, server_id, bytes(mm[pos + C.HEADER_LEN:pos + size - trailer])
            pos += size


# What a file opens with, before its first transaction.
_FILE_HEAD = frozenset({C.FORMAT_DESCRIPTION_EVENT, C.GTID_LIST_EVENT, C.PREVIOUS_GTIDS_LOG_EVENT,
                        C.BINLOG_CHECKPOINT_EVENT, C.START_ENCRYPTION_EVENT})
_STATE_EVENTS = frozenset({C.GTID_LIST_EVENT, C.MARIADB_GTID_EVENT, C.PREVIOUS_GTIDS_LOG_EVENT, C.GTID_LOG_EVENT,
                           C.GTID_TAGGED_LOG_EVENT})


def _mariadb_statements(mark: BinlogPosition, state: str) -> list[str]:
    if state:
        return [f"SET GLOBAL gtid_slave_pos = {quote_string(state)}",
                "CHANGE MASTER TO MASTER_HOST='<source>', MASTER_USER='<user>', MASTER_PASSWORD='<password>', "
                "MASTER_USE_GTID=slave_pos"]
    return [f"CHANGE MASTER TO MASTER_HOST='<source>', MASTER_USER='<user>', MASTER_PASSWORD='<password>', "
            f"MASTER_LOG_FILE={quote_string(mark.file)}, MASTER_LOG_POS={mark.pos}"]


def _mysql_statements(mark: BinlogPosition, state: str | None) -> list[str]:
    if state:
        # gtid_purged can only be set on a server whose gtid_executed is empty (or a subset of it).
        return [f"SET GLOBAL gtid_purged = {quote_string(state)}",
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST='<source>', SOURCE_USER='<user>', "
                "SOURCE_PASSWORD='<password>', SOURCE_AUTO_POSITION=1"]
    return [f"CHANGE REPLICATION SOURCE TO SOURCE_HOST='<source>', SOURCE_USER='<user>', "
            f"SOURCE_PASSWORD='<password>', SOURCE_LOG_FILE={quote_string(mark.file)}, SOURCE_LOG_POS={mark.pos}"]


def _gtid_list(body: bytes) -> dict[int, MariadbGtid]:
    """A MariaDB GTID_LIST event: the binlog state when the file was opened (one GTID per domain
    and server: the latest of each domain is its position)."""
    if len(body) < 4:
        raise BadInputError("a GTID_LIST event shorter than its count")
    count = struct.unpack_from("<I", body, 0)[0] & 0x0FFFFFFF
    state: dict[int, MariadbGtid] = {}
    for i in range(min(count, (len(body) - 4) // _GTID_LIST_ENTRY.size)):
        domain, server, seq = _GTID_LIST_ENTRY.unpack_from(body, 4 + i * _GTID_LIST_ENTRY.size)
        if domain not in state or seq > state[domain].seq_no:
            state[domain] = MariadbGtid(domain, server, seq)
    return state


def _previous_gtids(body: bytes) -> MysqlGtidSet | None:
    """A MySQL PREVIOUS_GTIDS event: gtid_executed when the file was opened. The tagged format of
    MySQL 8.3+ (a format byte in the count's top byte) is not decoded: None (say the position only)."""
    if len(body) < 8 or body[7] != 0:
        return None
    count, at, elements = struct.unpack_from("<Q", body, 0)[0], 8, []
    for _ in range(count):
        if at + _SID_INTERVALS.size > len(body):
            return None
        sid, n = _SID_INTERVALS.unpack_from(body, at)
        at += _SID_INTERVALS.size
        uuid = sid.hex()
        uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
        for _ in range(n):
            if at + _INTERVAL.size > len(body):
                return None
            first, end = _INTERVAL.unpack_from(body, at)
            at += _INTERVAL.size
            elements.append(f"{uuid}:{first}-{end - 1}")
    return MysqlGtidSet(",".join(elements))
