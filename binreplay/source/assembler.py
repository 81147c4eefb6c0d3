"""Grouping one file's events into transactions, the way the server wrote them.

Every event case, in one place (`Assembler.transactions`, `_other`):

    FORMAT_DESCRIPTION, ROTATE, STOP,       file-level: never part of a transaction (one inside a
    PREVIOUS_GTIDS, GTID_LIST, ...          transaction is bad input)
    GTID (MariaDB, MySQL, anonymous,        opens a transaction (a MariaDB one implies BEGIN unless
    tagged)                                 flagged standalone); one still open is bad input (its end
                                            is missing), but in a relay log
    QUERY BEGIN                             opens a transaction
    QUERY COMMIT / ROLLBACK                 ends it (ROLLBACK: non-transactional changes kept); a
                                            COMMIT with nothing open is bad input
    QUERY other                             a statement: inside BEGIN it belongs to the transaction,
                                            outside it is a transaction by itself (DDL); a first one
                                            that creates a table (not TEMPORARY) under a MariaDB GTID
                                            flagged DDL (CREATE TABLE ... SELECT in row format) commits
                                            implicitly: `implicit_commit`
    INTVAR, RAND, USER_VAR                  context of the statement that follows
    TABLE_MAP                               names a table id for the rows events after it
    ROWS (all versions, compressed)         row changes; must name a table id mapped before them,
                                            and a statement's last one is flagged STMT_END
    LANE (not an event type)                a whole MariaDB transaction of MariaDB GTID, TABLE_MAP,
                                            ROWS, informational events and XID, framed and checked
                                            at once by the compiled lane (`_frame`) with these rules
    XID                                     ends the transaction
    TRANSACTION_PAYLOAD                     a compressed MySQL transaction: its inner events are fed
                                            here too, decompressed within a fixed ceiling
    ANNOTATE_ROWS, ROWS_QUERY, ...          informational: kept, never applied (never among rows)
    INCIDENT                                bad input: the source says changes may be missing
    XA, LOAD DATA, encryption               refused (exit 7)
    unknown, flagged ignorable              skipped with a warning
    unknown, not flagged ignorable          bad input: it may carry changes we would lose
    a type the file's server never writes   bad input (past its FORMAT_DESCRIPTION's table of types)

A transaction must start with a GTID event when the file's server writes them (MariaDB 10+, MySQL
5.7.6+), and be as long as a MySQL 8 GTID event says. Any event whose body cannot be parsed is bad
input naming the file, the position and the type.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from binreplay.binlog import constants as C
from binreplay.binlog import events as E
from binreplay.binlog.boundaries import Boundaries, Control, Step, statement_control
from binreplay.binlog.file import LANE, BinlogFile
from binreplay.binlog.gtid_events import parse_mysql_gtid_event
from binreplay.binlog.header import table_id_len
from binreplay.binlog.table_map import check_table_map
from binreplay.errors import BadInputError, UnsupportedError
from binreplay.hotpath import compiled
from binreplay.model import Gtid, MariadbGtid, QueryInfo, Span, TableMapInfo, Transaction, TrxKind
from binreplay.source.event_bodies import FileEvents, xid
from binreplay.source.payload import assemble_payload

if TYPE_CHECKING:
    from binreplay.source.payload import PayloadFile

_U32 = struct.Struct("<I")
_XID_EVENT_LEN = C.HEADER_LEN + 8    # an XID event's header and body (its xid), without a checksum
_TABLE_MAP_CACHE = 4096       # distinct TABLE_MAP bodies (and table sets) remembered; a bound, not a tuning

_UNSUPPORTED = {
    C.START_ENCRYPTION_EVENT: "encrypted binlog events; decrypt the binlog with the server first",
    C.BEGIN_LOAD_QUERY_EVENT: "LOAD DATA logged in statement format",
    C.EXECUTE_LOAD_QUERY_EVENT: "LOAD DATA logged in statement format",
    C.APPEND_BLOCK_EVENT: "LOAD DATA logged in statement format",
    C.DELETE_FILE_EVENT: "LOAD DATA logged in statement format",
    C.XA_PREPARE_LOG_EVENT: "XA transactions",
}
_KNOWN = frozenset(C.event_names()) - frozenset(_UNSUPPORTED) - {C.INCIDENT_EVENT}
_QUERIES = frozenset({C.QUERY_EVENT, C.QUERY_COMPRESSED_EVENT})
# The lane (compiled, binreplay/_hotpath.c) by type code: 1 rows, 2 TABLE_MAP, 3 informational,
# 4 XID, 5 the MariaDB GTID it starts at; anything else (0) leaves the transaction to this module.
_LANE_KINDS = bytes(1 if t in C.ROWS_EVENTS else 2 if t == C.TABLE_MAP_EVENT else 3 if t in C.INFORMATIONAL_EVENTS
                    else 4 if t == C.XID_EVENT else 5 if t == C.MARIADB_GTID_EVENT else 0 for t in range(256))
# GTID flags the lane leaves to `_gtid`: a standalone statement, XA.
_LANE_REFUSED = C.FL_STANDALONE | C.FL_PREPARED_XA | C.FL_COMPLETED_XA




@dataclass
class OpenTransaction:
    """A transaction being assembled (its events so far)."""

    start: int                                 # coordinate of its first event
    spans: list[Span] = field(default_factory=list)
    infos: dict[int, object] = field(default_factory=dict)
    pending: list[tuple[Span, object]] = field(default_factory=list)   # context waiting for its statement
    gtid: Gtid | None = None
    table_ids: dict[int, TableMapInfo] = field(default_factory=dict)
    statements: int = 0
    rows: int = 0
    thread_id: int | None = None
    temp: bool = False
    rolled_back: bool = False
    from_payload: bool = False
    timestamp: int = 0
    length: int | None = None                  # bytes, as a MySQL 8 GTID event gives them (checked at its end)
    in_statement: bool = False                 # a TABLE_MAP was seen, no rows event has ended its statement yet

    @property
    def empty(self) -> bool:
        return not self.spans and not self.pending


# A statement's first keywords when it creates a table that is not TEMPORARY (TEMPORARY, even in a
# versioned comment, would stand between CREATE [OR REPLACE] and TABLE), after any plain comments.
_CREATES_TABLE = re.compile(rb"\s*(?:/\*(?![!M]).*?\*/\s*)*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\b", re.I | re.S)


def _commits_implicitly(g: OpenTransaction) -> bool:
    """A group (not standalone) whose first statement commits implicitly: CREATE [OR REPLACE] TABLE ...
    SELECT logged in row format, the CREATE (its columns, without the SELECT), then the rows (which
    autocommit on a server that replays it), then XID or COMMIT, under a MariaDB GTID flagged DDL.
    The flag alone says nothing: MariaDB also sets it on any group holding a CREATE TEMPORARY TABLE
    (BEGIN; CREATE TEMPORARY TABLE ...; INSERT ...; COMMIT in STATEMENT or MIXED format, and CREATE
    TEMPORARY TABLE ... SELECT inside one), which commits nothing. Measured on MariaDB 10.11."""
    gtid = g.gtid
    if not (g.statements and isinstance(gtid, MariadbGtid) and gtid.flags & C.FL_DDL):
        return False
    for info in g.infos.values():
        if isinstance(info, QueryInfo) and statement_control(info.sql) is None:
            return _CREATES_TABLE.match(info.sql) is not None
    return False


class Assembler(FileEvents):
    """Feeds one file's events (in order) and returns each transaction as it completes."""

    def __init__(self, f: BinlogFile, *, next_seq: Callable[[], int], warn: Callable[[str], None],
                 unknown: Callable[[str], bool],
                 table_maps: dict[int, dict[bytes, TableMapInfo]] | None = None) -> None:
        super().__init__(f)
        # TABLE_MAP body -> its names, by the TABLE_MAP post-header length of the file (the same body
        # means another table id where the FORMAT_DESCRIPTION gives ids another length).
        self._table_map_caches: dict[int, dict[bytes, TableMapInfo]] = {} if table_maps is None else table_maps
        self._table_maps = self._table_maps_of_format()
        # One table set per distinct run of TABLE_MAPs (a transaction's `tables`, see _table_set).
        # By the identity of the TableMapInfos (hashing their fields cost more than the rest of a small
        # transaction's set); each entry keeps its TableMapInfos alive, so no identity is reused meanwhile.
        self._tables: dict[tuple[int, ...], tuple[frozenset[tuple[str, str]], tuple[TableMapInfo, ...]]] = {}
        self._next_seq = next_seq
        self._warn = warn
        self._first_unknown = unknown   # True the first time an unknown type name is seen
        self.group: OpenTransaction | None = None
        self.bounds = Boundaries()
        self.incomplete: list[str] = []
        self.events = self.bytes = 0     # read by `transactions` (file-level events included)
        self.relay = False               # a second FORMAT_DESCRIPTION was seen: a relay log (see _gtid)
        self.needs_gtid = False          # its server writes a GTID event before every transaction
        self.types = 255                 # event types its server knows (its FORMAT_DESCRIPTION's table)
        self._lane_args: tuple = ()      # what the lane needs of the FORMAT_DESCRIPTION (`_set_lane`)
        # What it framed last: (end, spans, TABLE_MAP indexes, rows, the GTID's fields).
        self._lane_found: tuple = ()

    # -- the hot path ------------------------------------------------------------------

    def transactions(self, events: Iterable[tuple[int, int, int]]) -> Iterator[Transaction]:
        """Every transaction of the file's events (`BinlogFile.scan`), as it completes. Row events,
        most of a binlog, are handled inline here: this loop runs once per event."""
        rows_types, table_map, xid, stmt_end = C.ROWS_EVENTS, C.TABLE_MAP_EVENT, C.XID_EVENT, C.STMT_END_F
        informational = C.INFORMATIONAL_EVENTS
        data, fde = self.f.data, self.f.fde
        crc_len = fde.crc_len if fde is not None else 0
        id_ends: dict[int, int] = {}       # rows event type -> offset past its table id
        other, table_maps = self._other, self._table_maps
        n = nbytes = 0
        try:
            for t, pos, end in events:
                n += 1
                nbytes += end - pos
                if t == LANE:
                    n += len(self._lane_found[1]) - 1
                    yield self._from_lane(end)
                elif t in rows_types:
                    g = self.group or self._open(pos, t)
                    g.spans.append((t, pos, end))
                    g.rows += 1
                    id_end = id_ends.get(t)
                    if id_end is None:
                        id_end = id_ends[t] = C.HEADER_LEN + table_id_len(self.rows_phl(t, pos))
                    if pos + id_end + 2 > end - crc_len:
                        self.bad(t, pos, "it is shorter than its header")
                    if int.from_bytes(data[pos + C.HEADER_LEN:pos + id_end], "little") not in g.table_ids:  # type: ignore[index]
                        self._unmapped(t, pos, id_end)
                    g.in_statement = not data[pos + id_end] & stmt_end  # type: ignore[index]
                elif t == table_map:
                    g = self.group or self._open(pos, t)
                    g.spans.append((t, pos, end))
                    g.in_statement = True
                    info = table_maps.get(data[pos + C.HEADER_LEN:end - crc_len])  # type: ignore[index]
                    if info is None:
                        self._table_map(g, pos, end, len(g.spans) - 1)
                    else:   # parsed before (the same bytes): see _table_map
                        g.table_ids[info.table_id] = info
                        g.infos[len(g.spans) - 1] = info
                elif t in informational:
                    g = self.group or self._open(pos, t)
                    if g.in_statement:   # written before a statement's TABLE_MAPs, never among its rows
                        self.bad(t, pos, "it stands among the rows events of a statement")
                    g.spans.append((t, pos, end))
                elif t == xid and self.group is not None and end - pos - crc_len >= _XID_EVENT_LEN:
                    g = self.group
                    self.bounds.event(t)
                    g.spans.append((t, pos, end))
                    yield self._close(g, end, TrxKind.STATEMENT)
                else:
                    if t == C.FORMAT_DESCRIPTION_EVENT:   # the first, or a relay log's next: it governs what follows
                        self.relay = n > 1
                        self.needs_gtid = self.f.fde is not None and E.writes_gtids(self.f.fde)
                        self.types = len(self.f.fde.post_header_lengths) if self.f.fde is not None else 255
                        data, fde = self.f.data, self.f.fde
                        crc_len = fde.crc_len if fde is not None else 0
                        id_ends.clear()
                        table_maps = self._table_maps = self._table_maps_of_format()
                        self._set_lane()
                    done = other(t, pos, end)
                    if done is not None:
                        yield done
        finally:
            self.events, self.bytes = n, nbytes
            if isinstance(self.f, BinlogFile):
                self.f.lane = None

    def _table_maps_of_format(self) -> dict[bytes, TableMapInfo]:
        key = self.phl(C.TABLE_MAP_EVENT) if self.f.fde is not None else 0
        return self._table_map_caches.setdefault(key, {})

    # -- the lane: a whole row transaction at once -----------------------------------------

    def _set_lane(self) -> None:
        """Hand the file's MariaDB row transactions to the compiled lane, when there is one."""
        f, fde = self.f, self.f.fde
        if not isinstance(f, BinlogFile):
            return
        f.lane = None
        if compiled is None or fde is None:
            return
        phl = fde.post_header_lengths
        if len(phl) < C.MARIADB_GTID_EVENT:
            return    # its server writes no MariaDB GTID events: one is bad input (`_other` says so)
        # Offset past each rows type's table id; 0 for a type the file's server does not write (rows_phl).
        id_ends = bytes(C.HEADER_LEN + table_id_len(phl[t - 1]) if t in C.ROWS_EVENTS and t <= len(phl)
                        and phl[t - 1] else 0 for t in range(256))
        self._lane_args = (_LANE_KINDS, id_ends, table_id_len(self.phl(C.TABLE_MAP_EVENT)), fde.crc_len,
                           _LANE_REFUSED, C.FL_GROUP_COMMIT_ID)
        f.lane = self._frame

    def _frame(self, data: object, pos: int, size: int, check_crc: bool, verified_to: int) -> int:
        assert compiled is not None
        found = compiled.frame_row_transaction(data, pos, size, check_crc, verified_to, *self._lane_args)
        if found is None:
            return 0     # not the common shape, or something is wrong: the events come one by one
        self._lane_found = found
        return found[0]

    def _from_lane(self, end: int) -> Transaction:
        """The transaction the lane framed: what the inline path and `_close` do per event, done once
        (the lane checked the rest: framing, CRC32, table ids, statement ends, the XID)."""
        _end, spans, maps, rows, fields = self._lane_found
        t, pos, gtid_end = spans[0]
        if self.group is not None:    # a transaction still open: `_gtid` says what is wrong with it
            self._gtid(t, pos, gtid_end)
            self.group = None
        gtid = MariadbGtid(*fields)   # (the lane read them as mariadb_gtid does, lengths checked)
        self.bounds.inside = self.bounds.opened = False    # a GTID implying BEGIN, then XID
        f = self.f
        data, crc_len, table_maps = f.data, self._lane_args[3], self._table_maps
        assert data is not None and f.fde is not None
        infos: dict[int, object] = {0: gtid}
        table_ids: dict[int, TableMapInfo] = {}
        for i in maps:
            _t, map_pos, map_end = spans[i]
            info = table_maps.get(data[map_pos + C.HEADER_LEN:map_end - crc_len])
            if info is None:
                info = self._parse_table_map(map_pos, map_end)
            table_ids[info.table_id] = info
            infos[i] = info
        return Transaction(
            seq=self._next_seq(), file_index=f.index, file=f.name, start_pos=pos, end_pos=end,
            timestamp=_U32.unpack_from(data, pos)[0], kind=TrxKind.ROWS if rows else TrxKind.EMPTY, fde=f.fde,
            data=data[pos:end], spans=spans, base=pos, infos=infos, gtid=gtid, tables=self._table_set(table_ids))

    def _unmapped(self, t: int, pos: int, id_end: int) -> None:
        data = self.f.data
        assert data is not None
        table_id = int.from_bytes(data[pos + C.HEADER_LEN:pos + id_end], "little")
        # The server would skip such an event silently (its rows would be lost).
        self.bad(t, pos, f"it changes rows of table id {table_id}, which no TABLE_MAP event of its "
                          "transaction maps")

    def _table_map(self, g: OpenTransaction, pos: int, end: int, index: int) -> None:
        info = self._parse_table_map(pos, end)
        g.table_ids[info.table_id] = info
        g.infos[index] = info

    def _parse_table_map(self, pos: int, end: int) -> TableMapInfo:
        # A table's TABLE_MAP repeats byte for byte in every transaction that writes it: parse it once.
        data, fde = self.f.data, self.f.fde
        assert data is not None and fde is not None
        key = data[pos + C.HEADER_LEN:end - C.CRC_LEN if fde.has_crc32 else end]   # the CRC covers the header
        info = self._table_maps.get(key)
        if info is None:
            info = self.parse_body(C.TABLE_MAP_EVENT, pos, end,
                                   lambda body: check_table_map(body, self.phl(C.TABLE_MAP_EVENT)))
            if len(self._table_maps) >= _TABLE_MAP_CACHE:
                self._table_maps.clear()
            self._table_maps[key] = info
        return info

    # -- everything else -----------------------------------------------------------------

    def _other(self, t: int, pos: int, end: int) -> Transaction | None:
        if t in C.FILE_LEVEL_EVENTS:
            g = self.group
            if g is not None and not g.empty and not self.relay and t != C.FORMAT_DESCRIPTION_EVENT:
                # The server writes these between transactions only: one inside a transaction is a
                # damaged event (a rows event whose type byte changed would otherwise be lost).
                self.bad(t, pos, f"it stands inside the transaction that starts at {g.start}")
            return None
        if t > self.types and not self.flags(pos) & C.LOG_EVENT_IGNORABLE_F:
            self.bad(t, pos, "the server that wrote the file does not write this event type")
        if t == C.INCIDENT_EVENT:
            raise BadInputError(f"{self.f.path}: INCIDENT event at position {pos}: the source recorded that "
                                "changes may be missing from its binlog; replay stops here (as a replica would)")
        if t in _UNSUPPORTED:
            raise UnsupportedError(f"{self.f.path}: {C.event_name(t)} event at position {pos}: "
                                   f"{_UNSUPPORTED[t]} cannot be replayed by binreplay")
        if t in C.GTID_EVENTS:
            self._gtid(t, pos, end)   # opens a transaction, never ends one
            return None
        g = self.group or self._open(pos, t)
        if t == C.TRANSACTION_PAYLOAD_EVENT:
            return assemble_payload(self, g, pos, end)
        if t in _QUERIES:
            return self._query(g, t, pos, end)
        if t in C.STATEMENT_CONTEXT_EVENTS:
            parse = E.parse_intvar if t == C.INTVAR_EVENT else E.parse_rand if t == C.RAND_EVENT else E.parse_user_var
            g.pending.append(((t, pos, end), self.parse_body(t, pos, end, parse)))
            return None
        if t == C.XID_EVENT:
            self.parse_body(t, pos, end, xid)
            self.bounds.event(t)
            g.spans.append((t, pos, end))
            return self._close(g, end, TrxKind.STATEMENT)
        if t in C.INFORMATIONAL_EVENTS:
            g.spans.append((t, pos, end))
            return None
        self._unknown(t, pos, end)
        return None

    def _unknown(self, t: int, pos: int, end: int) -> None:
        flags = self.flags(pos)
        name = C.event_name(t)
        if t in _KNOWN or not flags & C.LOG_EVENT_IGNORABLE_F:
            # A known type in the wrong place, or one a newer server may use to carry changes.
            self.bad(t, pos, "binreplay does not know this event type and it is not flagged ignorable"
                      if t not in _KNOWN else "it cannot stand here")
        if self._first_unknown(name):
            self._warn(f"{self.f.path}: skipping unknown event type {t} ({name}, flagged ignorable) at "
                       f"position {pos}")
        if self.group is not None:
            self.group.spans.append((t, pos, end))

    def _open(self, pos: int, t: int) -> OpenTransaction:
        """A transaction opened by an event that is not a GTID event: in a file whose server writes a
        GTID event before every transaction, the GTID event was lost (or this event is damaged)."""
        if self.needs_gtid and not self.relay:
            self.bad(t, pos, "it begins a transaction that has no GTID event (the server writes one before every "
                             "transaction)")
        return self._start(pos)

    def _start(self, pos: int) -> OpenTransaction:
        g = OpenTransaction(pos)
        data = self.f.data
        assert data is not None
        g.timestamp = struct.unpack_from("<I", data, pos)[0]
        self.group = g
        return g

    def _gtid(self, t: int, pos: int, end: int) -> None:
        g = self.group
        if g is not None and not g.empty:
            msg = (f"{self.f.path}: incomplete transaction at position {g.start} is followed by a new "
                   f"transaction at {pos}")
            if not self.relay:
                # A server writes each transaction whole: its end (XID, COMMIT) is missing, so the
                # file is damaged, and applying what follows would drop that transaction.
                raise BadInputError(f"{msg}: its XID or COMMIT event is missing (corrupt binlog?)")
            # A relay log may hold a partial transaction its replica received again after a reconnect.
            self.incomplete.append(msg + "; not applied")
            self._warn(msg + "; not applied")
        g = self._start(pos)
        if t == C.MARIADB_GTID_EVENT:
            gtid = self.mariadb_gtid(pos, end)
            if gtid.flags & (C.FL_PREPARED_XA | C.FL_COMPLETED_XA):
                raise UnsupportedError(f"{self.f.path}: XA transaction {gtid} at position {pos} "
                                       "cannot be replayed by binreplay")
            # A MariaDB GTID event stands in for BEGIN unless it is flagged standalone.
            self.bounds.gtid(implies_begin=not gtid.flags & C.FL_STANDALONE)
        else:
            gtid, g.length = self.parse_body(t, pos, end, lambda body: parse_mysql_gtid_event(body, t))
            self.bounds.gtid(implies_begin=False)
        g.gtid = gtid
        g.infos[0] = gtid
        g.spans.append((t, pos, end))
        return None

    def _query(self, g: OpenTransaction, t: int, pos: int, end: int) -> Transaction | None:
        phl = self.phl(C.QUERY_EVENT)
        compressed = t == C.QUERY_COMPRESSED_EVENT
        q = self.parse_body(t, pos, end, lambda body: E.parse_query(body, phl, compressed=compressed))
        control = statement_control(q.sql)
        if control is Control.XA:
            raise UnsupportedError(f"{self.f.path}: XA transaction at position {pos} cannot be replayed by binreplay")
        step = self.bounds.query(control)
        if step is Step.ALONE and control is Control.COMMIT:
            self.bad(t, pos, "it commits a transaction no BEGIN or GTID event opened")
        if step is Step.OPEN:
            self._add(g, (t, pos, end), q)
            return None
        if step is Step.END:
            g.rolled_back = control is Control.ROLLBACK
            self._add(g, (t, pos, end), q)
            return self._close(g, end, TrxKind.STATEMENT)
        for span, info in g.pending:
            self._add(g, span, info)
        g.pending.clear()
        self._add(g, (t, pos, end), q)
        g.statements += 1
        g.thread_id = q.thread_id
        data = self.f.data
        assert data is not None
        if struct.unpack_from("<H", data, pos + 17)[0] & C.LOG_EVENT_THREAD_SPECIFIC_F:
            g.temp = True
        if step is Step.ALONE:
            # A statement outside BEGIN ... COMMIT commits on its own: DDL or non-transactional.
            return self._close(g, end, TrxKind.DDL)
        return None

    @staticmethod
    def _add(g: OpenTransaction, span: Span, info: object) -> None:
        g.infos[len(g.spans)] = info
        g.spans.append(span)

    def _close(self, g: OpenTransaction, end: int, default_kind: TrxKind) -> Transaction:
        self.group = None
        if g.length is not None and end - g.start != g.length:
            self.wrong_length(g, end)
        if g.in_statement:
            # The server ends every statement's rows with a rows event flagged STMT_END: this one
            # lost its last rows event (deleted, or its type byte damaged into one never applied).
            raise BadInputError(f"{self.f.path}: the transaction at position {g.start} ends inside a statement: no "
                                "rows event ends the statement its last TABLE_MAP begins (corrupt binlog?)")
        if default_kind is TrxKind.DDL:
            kind = TrxKind.DDL
        elif g.rows and g.statements:
            kind = TrxKind.MIXED
        elif g.rows:
            kind = TrxKind.ROWS
        elif g.statements:
            kind = TrxKind.STATEMENT
        else:
            kind = TrxKind.EMPTY
        f = self.f
        assert f.fde is not None and f.data is not None
        return Transaction(
            seq=self._next_seq(), file_index=f.index, file=f.name, start_pos=g.start, end_pos=end,
            timestamp=g.timestamp, kind=kind, fde=f.fde, data=f.data[g.start:end], spans=g.spans,
            base=g.start, infos=g.infos, gtid=g.gtid,
            tables=self._table_set(g.table_ids), thread_id=g.thread_id,
            uses_temporary_tables=g.temp, non_transactional=g.rolled_back, from_payload=g.from_payload,
            implicit_commit=kind is not TrxKind.DDL and _commits_implicitly(g))

    def _table_set(self, table_ids: dict[int, TableMapInfo]) -> frozenset[tuple[str, str]]:
        """(schema, table) of a transaction's TABLE_MAPs: one frozenset for each run of them, built once."""
        key = tuple(map(id, table_ids.values()))
        found = self._tables.get(key)
        if found is None:
            if len(self._tables) >= _TABLE_MAP_CACHE:
                self._tables.clear()
            infos = tuple(table_ids.values())
            found = self._tables[key] = (frozenset((i.schema, i.table) for i in infos), infos)
        return found[0]

    def nested(self, f: PayloadFile, g: OpenTransaction) -> Assembler:
        """An assembler for the inner events of a compressed transaction, continuing `g` (source/payload.py)."""
        sub = Assembler(f, next_seq=self._next_seq, warn=self._warn, unknown=self._first_unknown,  # type: ignore[arg-type]
                        table_maps=self._table_map_caches)
        sub.bounds = self.bounds
        sub.group = OpenTransaction(0, gtid=g.gtid, timestamp=g.timestamp, from_payload=True)
        return sub

    def wrong_length(self, g: OpenTransaction, end: int) -> NoReturn:
        raise BadInputError(f"{self.f.path}: the transaction at position {g.start} is {end - g.start} bytes long, but "
                            f"its GTID event says {g.length}: an event of it is missing, added or damaged "
                            "(corrupt binlog?)")

    def finish(self) -> None:
        """At the end of the file: a transaction still open never committed there (the server stopped
        while writing it; a closed file, ending in ROTATE or STOP, cannot get here: see _other)."""
        g = self.group
        if g is not None and not g.empty:
            msg = (f"{self.f.path}: incomplete transaction at position {g.start} "
                   f"({len(g.spans) + len(g.pending)} events): the file ends inside it; not applied")
            self.incomplete.append(msg)
            self._warn(msg)
