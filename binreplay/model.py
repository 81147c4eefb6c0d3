"""The transaction model every stage of the pipeline shares.

The reader produces `Transaction`s; the scheduler, the appliers and the
checkpoint only ever look at these dataclasses, never at raw bytes layout.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import struct
from dataclasses import dataclass, field

from binreplay.binlog.constants import CRC_LEN, FL_TRANSACTIONAL, ROWS_EVENTS

# A statement that can change a table's definition, after leading comments (not CREATE/DROP TEMPORARY:
# a temporary table is no target table whose definition the caches hold).
_DEFINING = re.compile(rb"(?:\s|/\*(?![!M]).*?\*/|--[ \t][^\n]*\n|#[^\n]*\n)*"
                       rb"(?:CREATE|ALTER|DROP|RENAME|TRUNCATE)\b(?!\s+(?:OR\s+REPLACE\s+)?TEMPORARY\b)", re.I | re.S)


@dataclass(frozen=True, order=True)
class BinlogPosition:
    """A point between two events. Orders across files by the file's ordinal in the run."""

    file_index: int
    file: str
    pos: int

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}"


@dataclass(frozen=True)
class MariadbGtid:
    domain_id: int
    server_id: int
    seq_no: int
    flags: int = 0
    commit_id: int | None = None  # group-commit id: same id = committed together on the source

    def __str__(self) -> str:
        return f"{self.domain_id}-{self.server_id}-{self.seq_no}"


@dataclass(frozen=True)
class MysqlGtid:
    """A MySQL GTID; `sid` is None for ANONYMOUS_GTID (gtid_mode=OFF)."""

    sid: str | None
    gno: int
    tag: str | None = None
    last_committed: int | None = None
    sequence_number: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.sid is None

    def __str__(self) -> str:
        if self.sid is None:
            return "ANONYMOUS"
        return f"{self.sid}:{self.tag}:{self.gno}" if self.tag else f"{self.sid}:{self.gno}"


Gtid = MariadbGtid | MysqlGtid


@dataclass(frozen=True)
class FormatDescription:
    """What the FORMAT_DESCRIPTION event of a file says about the events after it."""

    binlog_version: int
    server_version: str
    create_timestamp: int
    header_length: int
    post_header_lengths: bytes
    checksum_alg: int          # 0 = none, 1 = CRC32 (255/absent: undefined, treated as none)
    raw: bytes                 # the whole event, re-sent as BINLOG '<base64>' to prime a session
    checksum_trailer: bool = True   # the FDE ends with the algorithm byte and its own CRC32

    @property
    def flavor(self) -> str:
        return "mariadb" if "mariadb" in self.server_version.lower() else "mysql"

    @property
    def has_crc32(self) -> bool:
        return self.checksum_alg == 1

    @property
    def crc_len(self) -> int:
        """Bytes of checksum at the end of each event of the file (0 without checksums)."""
        return CRC_LEN if self.has_crc32 else 0


@dataclass(frozen=True)
class QueryContext:
    """Session state a QUERY event carries in its status variables (only what was present)."""

    flags2: int | None = None
    sql_mode: int | None = None
    auto_increment: tuple[int, int] | None = None        # (increment, offset)
    charset: tuple[int, int, int] | None = None          # (client, connection collation, server collation)
    time_zone: str | None = None
    lc_time_names: int | None = None
    charset_database: int | None = None
    microseconds: int | None = None
    explicit_defaults_for_timestamp: int | None = None
    default_collation_for_utf8mb4: int | None = None
    sql_require_primary_key: int | None = None
    default_table_encryption: int | None = None
    updated_db_names: tuple[str, ...] | None = None
    xid: int | None = None
    gtid_flags3: int | None = None


@dataclass(frozen=True)
class QueryInfo:
    thread_id: int
    exec_time: int
    error_code: int
    db: str
    sql: bytes                 # the statement in the client character set it was written in
    context: QueryContext

    @property
    def sql_text(self) -> str:
        return self.sql.decode("utf-8", "replace")


@dataclass(frozen=True)
class TableMapInfo:
    table_id: int
    schema: str
    table: str


@dataclass(frozen=True)
class IntvarInfo:
    kind: int                  # 1 = LAST_INSERT_ID, 2 = INSERT_ID
    value: int


@dataclass(frozen=True)
class RandInfo:
    seed1: int
    seed2: int


@dataclass(frozen=True)
class UserVarInfo:
    name: bytes
    value_type: int            # 0 string, 1 real, 2 int, 4 decimal (Item_result)
    charset: int               # collation id of a string value
    value: bytes | None        # None = NULL; raw bytes as the source stored them
    unsigned: bool = False


@dataclass(slots=True)
class Event:
    """One binlog event: its header fields, exact bytes, and (for events we act on) parsed body."""

    type_code: int
    timestamp: int
    server_id: int
    flags: int
    start: int                 # offset of the event in its file
    end: int                   # offset just after it (== header log_pos for real binlogs)
    raw: bytes                 # header + body + checksum, exactly as in the file
    info: object | None = None # QueryInfo, TableMapInfo, IntvarInfo, ... or None

    @property
    def name(self) -> str:
        from binreplay.binlog.constants import event_name

        return event_name(self.type_code)


class TrxKind(enum.Enum):
    ROWS = "rows"              # only row events: applied through BINLOG statements
    STATEMENT = "statement"    # statement-based DML inside BEGIN ... COMMIT
    MIXED = "mixed"            # both row events and statements
    DDL = "ddl"                # a standalone, implicitly committing statement
    EMPTY = "empty"            # BEGIN ... COMMIT with nothing in between


Span = tuple[int, int, int]
"""(type code, start, end) of one event of a transaction, in the coordinates of its `data`."""

_HEADER = struct.Struct("<IBIIIH")


@dataclass(slots=True, eq=False)
class Transaction:
    """A source transaction: the unit that is applied atomically and recorded in the checkpoint.

    Its events are kept as the bytes the file has for them (`data`, one copy per transaction) and
    where each event lies in them (`spans`); the hot path (BINLOG statements, conflict keys, table
    checks) works on those slices. `events` builds `Event` objects only for the code that needs
    them (statements, filters, --apply sql, plan), once.
    """

    seq: int                               # reading order within this run, from 0
    file_index: int
    file: str
    start_pos: int
    end_pos: int
    timestamp: int                         # header timestamp of its first event (seconds, UTC)
    kind: TrxKind
    fde: FormatDescription
    data: bytes = b""                      # the bytes of its events, in order
    spans: list[Span] = field(default_factory=list)
    base: int = 0                          # the coordinate of data[0] (start_pos when data is the file's)
    infos: dict[int, object] = field(default_factory=dict)   # parsed bodies, by span index
    positions: list[int] | None = None     # file offset of each event when data is not the file's slice
    gtid: Gtid | None = None
    tables: frozenset[tuple[str, str]] = frozenset()   # (schema, table) from TABLE_MAP events
    thread_id: int | None = None           # pseudo-thread of its statements (temporary tables)
    uses_temporary_tables: bool = False
    non_transactional: bool = False        # the source rolled it back but kept its non-transactional changes
    # Target tables its row events write whose engine cannot roll back (MyISAM, Aria, MEMORY ...), as
    # "`schema`.`table` (ENGINE)": set by the table check (run/table_check.py) before it is batched.
    writes_non_transactional: tuple[str, ...] = ()
    from_payload: bool = False             # came out of a MySQL TRANSACTION_PAYLOAD (compressed)
    # Its first statement commits implicitly and what follows it autocommits (MariaDB's CREATE TABLE ...
    # SELECT, logged as the CREATE then the rows, under a GTID flagged DDL).
    implicit_commit: bool = False
    _events: list[Event] | None = field(default=None, init=False, repr=False)

    @property
    def end(self) -> BinlogPosition:
        return BinlogPosition(self.file_index, self.file, self.end_pos)

    @property
    def start(self) -> BinlogPosition:
        return BinlogPosition(self.file_index, self.file, self.start_pos)

    @property
    def row_events(self) -> int:
        """How many rows events it has (the summary's count; while its spans are there)."""
        return sum(1 for span in self.spans if span[0] in ROWS_EVENTS)

    @property
    def is_barrier(self) -> bool:
        """Must run alone: anything that is not pure row changes cannot be keyed safely. An empty
        transaction (or one the filters emptied) only writes its progress row: it needs no keys."""
        return (self.kind not in (TrxKind.ROWS, TrxKind.EMPTY) or self.uses_temporary_tables
                or self.non_transactional or bool(self.writes_non_transactional))

    @property
    def kept_on_rollback(self) -> str:
        """What of it a rollback on the target would not undo ("" when nothing): its changes to tables
        that cannot roll back, so a failed attempt may have left part of it applied. MariaDB flags every
        group it could roll back (FL_TRANSACTIONAL); statements without that flag and without temporary
        tables (whose groups never carry it) wrote a non-transactional table on the source."""
        if self.writes_non_transactional:
            return ", ".join(self.writes_non_transactional)
        if self.non_transactional:
            return "non-transactional tables (the source rolled it back and kept those changes)"
        if (self.kind in (TrxKind.STATEMENT, TrxKind.MIXED) and isinstance(self.gtid, MariadbGtid)
                and not self.gtid.flags & FL_TRANSACTIONAL and not self.uses_temporary_tables):
            return "a non-transactional table (the source logged its statements as not transactional)"
        return ""

    @property
    def journaled(self) -> bool:
        """Commits implicitly (a standalone statement, or a group whose statement does), so it cannot
        carry its progress row atomically: applied around the DDL journal (apply/applier.py)."""
        return self.kind is TrxKind.DDL or self.implicit_commit

    @property
    def may_change_definitions(self) -> bool:
        """May create, replace, alter or drop tables, so what was read of the target's table definitions
        before it may be stale after it: DDL, a statement that commits implicitly, or a statement group
        with a statement that begins like DDL (statement-logged DML, the common case in a MIXED binlog,
        does not: refreshing the caches after each would reload them per transaction)."""
        if self.kind is TrxKind.DDL or self.implicit_commit:
            return True
        if self.kind not in (TrxKind.STATEMENT, TrxKind.MIXED):
            return False
        return any(isinstance(ev.info, QueryInfo) and _DEFINING.match(ev.info.sql) is not None for ev in self.events)

    @property
    def size(self) -> int:
        return self.end_pos - self.start_pos

    def raw(self, span: Span) -> bytes:
        """The bytes of one of its events."""
        return self.data[span[1] - self.base:span[2] - self.base]

    @property
    def events(self) -> list[Event]:
        if self._events is None:
            self._events = [self._event(i, span) for i, span in enumerate(self.spans)]
        return self._events

    def _event(self, i: int, span: Span) -> Event:
        raw = self.raw(span)
        ts, _t, server_id, _size, _log_pos, flags = _HEADER.unpack_from(raw)
        if self.positions is None:
            start, end = span[1], span[2]
        else:
            start = self.positions[i]
            end = start + len(raw)
        return Event(span[0], ts, server_id, flags, start, end, raw, self.infos.get(i))

    def with_events(self, events: list[Event], **changes: object) -> Transaction:
        """The same transaction with other events (a filter dropped or rewrote some)."""
        data = b"".join(ev.raw for ev in events)
        spans, infos, at = [], {}, 0
        for i, ev in enumerate(events):
            spans.append((ev.type_code, at, at + len(ev.raw)))
            at += len(ev.raw)
            if ev.info is not None:
                infos[i] = ev.info
        trx = dataclasses.replace(self, data=data, spans=spans, base=0, infos=infos,
                                  positions=[ev.start for ev in events], **changes)  # type: ignore[arg-type]
        trx._events = list(events)
        return trx
