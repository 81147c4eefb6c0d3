"""Grouping one file's events into transactions, the way the server wrote them.

Every event case, in one place (`Assembler.feed`):

    FORMAT_DESCRIPTION, ROTATE, STOP,       file-level: never part of a transaction
    PREVIOUS_GTIDS, GTID_LIST, ...
    GTID (MariaDB, MySQL, anonymous,        opens a transaction (a MariaDB one implies BEGIN unless
    tagged)                                 flagged standalone); one still open is reported incomplete
    QUERY BEGIN                             opens a transaction
    QUERY COMMIT / ROLLBACK                 ends it (ROLLBACK: non-transactional changes kept)
    QUERY other                             a statement: inside BEGIN it belongs to the transaction,
                                            outside it is a transaction by itself (DDL)
    INTVAR, RAND, USER_VAR                  context of the statement that follows
    TABLE_MAP                               names a table id for the rows events after it
    ROWS (all versions, compressed)         row changes; must name a table id mapped before them
    XID                                     ends the transaction
    TRANSACTION_PAYLOAD                     a compressed MySQL transaction: its inner events are fed
                                            here too, decompressed within a fixed ceiling
    ANNOTATE_ROWS, ROWS_QUERY, ...          informational: kept, never applied
    INCIDENT                                bad input: the source says changes may be missing
    XA, LOAD DATA, encryption               refused (exit 7)
    unknown, flagged ignorable              skipped with a warning
    unknown, not flagged ignorable          bad input: it may carry changes we would lose

Any event whose body cannot be parsed is bad input naming the file, the position and the type.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from binreplay.binlog import constants as C
from binreplay.binlog import events as E
from binreplay.binlog.boundaries import Boundaries, Control, Step, statement_control
from binreplay.binlog.file import BinlogFile
from binreplay.binlog.header import body_of, post_header_len
from binreplay.binlog.table_map import table_map_names
from binreplay.errors import BadInputError, UnsupportedError
from binreplay.model import Gtid, MariadbGtid, Span, TableMapInfo, Transaction, TrxKind
from binreplay.source.payload import assemble_payload

if TYPE_CHECKING:
    from binreplay.source.payload import PayloadFile

_HEADER = struct.Struct("<IBIIIH")
_MARIADB_GTID = struct.Struct("<QIB")   # sequence number, domain id, flags
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_XID_LEN = 8
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


class _BodyError(Exception):
    """A body parser hit the end of its bytes or a value that cannot be: reported as bad input."""


_PARSE_ERRORS = (struct.error, IndexError, ValueError, UnicodeError, zlib.error, OverflowError, KeyError)


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

    @property
    def empty(self) -> bool:
        return not self.spans and not self.pending


class Assembler:
    """Feeds one file's events (in order) and returns each transaction as it completes."""

    def __init__(self, f: BinlogFile, *, next_seq: Callable[[], int], warn: Callable[[str], None],
                 unknown: Callable[[str], bool], table_maps: dict[bytes, TableMapInfo] | None = None) -> None:
        self.f = f
        self._table_maps = {} if table_maps is None else table_maps   # TABLE_MAP body -> its names
        self._tables: dict[frozenset, frozenset] = {}                  # one copy of each table set
        self._next_seq = next_seq
        self._warn = warn
        self._first_unknown = unknown   # True the first time an unknown type name is seen
        self.group: OpenTransaction | None = None
        self.bounds = Boundaries()
        self.incomplete: list[str] = []
        self.events = self.bytes = 0     # read by `transactions` (file-level events included)

    # -- the hot path ------------------------------------------------------------------

    def transactions(self, events: Iterable[tuple[int, int, int]]) -> Iterator[Transaction]:
        """Every transaction of the file's events (`BinlogFile.scan`), as it completes. Row events,
        most of a binlog, are handled inline here: this loop runs once per event."""
        rows_types, table_map, xid = C.ROWS_EVENTS, C.TABLE_MAP_EVENT, C.XID_EVENT
        informational = C.INFORMATIONAL_EVENTS
        data, fde = self.f.data, self.f.fde
        crc_len = C.CRC_LEN if fde is not None and fde.has_crc32 else 0
        id_ends: dict[int, int] = {}       # rows event type -> offset past its table id
        other, table_maps = self._other, self._table_maps
        n = nbytes = 0
        try:
            for t, pos, end in events:
                n += 1
                nbytes += end - pos
                if t in rows_types:
                    g = self.group or self._open(pos)
                    g.spans.append((t, pos, end))
                    g.rows += 1
                    id_end = id_ends.get(t)
                    if id_end is None:
                        id_end = id_ends[t] = C.HEADER_LEN + (4 if self._phl(t) == 6 else 6)
                    if pos + id_end > end - crc_len:
                        self.bad(t, pos, "it is shorter than its header")
                    if int.from_bytes(data[pos + C.HEADER_LEN:pos + id_end], "little") not in g.table_ids:  # type: ignore[index]
                        self._unmapped(t, pos, id_end)
                elif t == table_map:
                    g = self.group or self._open(pos)
                    g.spans.append((t, pos, end))
                    info = table_maps.get(data[pos + C.HEADER_LEN:end - crc_len])  # type: ignore[index]
                    if info is None:
                        self._table_map(g, pos, end)
                    else:   # parsed before (the same bytes): see _table_map
                        g.table_ids[info.table_id] = info
                        g.infos[len(g.spans) - 1] = info
                elif t in informational:
                    (self.group or self._open(pos)).spans.append((t, pos, end))
                elif t == xid and self.group is not None and end - pos - crc_len >= _XID_LEN:
                    g = self.group
                    self.bounds.event(t)
                    g.spans.append((t, pos, end))
                    yield self._close(g, end, TrxKind.STATEMENT)
                else:
                    if t == C.FORMAT_DESCRIPTION_EVENT:   # the first, or a relay log's next: it governs what follows
                        data, fde = self.f.data, self.f.fde
                        crc_len = C.CRC_LEN if fde is not None and fde.has_crc32 else 0
                        id_ends.clear()
                    done = other(t, pos, end)
                    if done is not None:
                        yield done
        finally:
            self.events, self.bytes = n, nbytes

    def _unmapped(self, t: int, pos: int, id_end: int) -> None:
        data = self.f.data
        assert data is not None
        table_id = int.from_bytes(data[pos + C.HEADER_LEN:pos + id_end], "little")
        # The server would skip such an event silently (its rows would be lost).
        self.bad(t, pos, f"it changes rows of table id {table_id}, which no TABLE_MAP event of its "
                          "transaction maps")

    def _table_map(self, g: OpenTransaction, pos: int, end: int) -> None:
        # A table's TABLE_MAP repeats byte for byte in every transaction that writes it: parse it once.
        data, fde = self.f.data, self.f.fde
        assert data is not None and fde is not None
        key = data[pos + C.HEADER_LEN:end - C.CRC_LEN if fde.has_crc32 else end]   # the CRC covers the header
        info = self._table_maps.get(key)
        if info is None:
            info = self.parse_body(C.TABLE_MAP_EVENT, pos, end,
                               lambda body: table_map_names(body, self._phl(C.TABLE_MAP_EVENT))[0])
            if len(self._table_maps) >= _TABLE_MAP_CACHE:
                self._table_maps.clear()
            self._table_maps[key] = info
        g.table_ids[info.table_id] = info
        g.infos[len(g.spans) - 1] = info

    def _phl(self, t: int) -> int:
        fde = self.f.fde
        assert fde is not None
        return post_header_len(fde, t)

    # -- everything else -----------------------------------------------------------------

    def _other(self, t: int, pos: int, end: int) -> Transaction | None:
        if t in C.FILE_LEVEL_EVENTS:
            return None
        if t == C.INCIDENT_EVENT:
            raise BadInputError(f"{self.f.path}: INCIDENT event at position {pos}: the source recorded that "
                                "changes may be missing from its binlog; replay stops here (as a replica would)")
        if t in _UNSUPPORTED:
            raise UnsupportedError(f"{self.f.path}: {C.event_name(t)} event at position {pos}: "
                                   f"{_UNSUPPORTED[t]} cannot be replayed by binreplay")
        if t in C.GTID_EVENTS:
            self._gtid(t, pos, end)   # opens a transaction, never ends one
            return None
        g = self.group or self._open(pos)
        if t == C.TRANSACTION_PAYLOAD_EVENT:
            return assemble_payload(self, g, pos, end)
        if t in _QUERIES:
            return self._query(g, t, pos, end)
        if t in C.STATEMENT_CONTEXT_EVENTS:
            parse = E.parse_intvar if t == C.INTVAR_EVENT else E.parse_rand if t == C.RAND_EVENT else E.parse_user_var
            g.pending.append(((t, pos, end), self.parse_body(t, pos, end, parse)))
            return None
        if t == C.XID_EVENT:
            self.parse_body(t, pos, end, _xid)
            self.bounds.event(t)
            g.spans.append((t, pos, end))
            return self._close(g, end, TrxKind.STATEMENT)
        if t in C.INFORMATIONAL_EVENTS:
            g.spans.append((t, pos, end))
            return None
        self._unknown(t, pos, end)
        return None

    def _unknown(self, t: int, pos: int, end: int) -> None:
        data = self.f.data
        assert data is not None
        flags = struct.unpack_from("<H", data, pos + 17)[0]
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

    def _open(self, pos: int) -> OpenTransaction:
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
                   f"transaction at {pos}; not applied")
            self.incomplete.append(msg)
            self._warn(msg)
        g = self._open(pos)
        if t == C.MARIADB_GTID_EVENT:
            gtid = self._mariadb_gtid(pos, end)
            if gtid.flags & (C.FL_PREPARED_XA | C.FL_COMPLETED_XA):
                raise UnsupportedError(f"{self.f.path}: XA transaction {gtid} at position {pos} "
                                       "cannot be replayed by binreplay")
            # A MariaDB GTID event stands in for BEGIN unless it is flagged standalone.
            self.bounds.gtid(implies_begin=not gtid.flags & C.FL_STANDALONE)
        else:
            gtid = self.parse_body(t, pos, end, lambda body: E.parse_mysql_gtid(body, t))
            self.bounds.gtid(implies_begin=False)
        g.gtid = gtid
        g.infos[0] = gtid
        g.spans.append((t, pos, end))
        return None

    def _mariadb_gtid(self, pos: int, end: int) -> MariadbGtid:
        """Its body read in place (one per transaction: no copy); any length it lacks is bad input."""
        data, fde = self.f.data, self.f.fde
        assert data is not None and fde is not None
        body_end = end - (C.CRC_LEN if fde.has_crc32 else 0)
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

    def _query(self, g: OpenTransaction, t: int, pos: int, end: int) -> Transaction | None:
        phl = self._phl(C.QUERY_EVENT)
        compressed = t == C.QUERY_COMPRESSED_EVENT
        q = self.parse_body(t, pos, end, lambda body: E.parse_query(body, phl, compressed=compressed))
        control = statement_control(q.sql)
        if control is Control.XA:
            raise UnsupportedError(f"{self.f.path}: XA transaction at position {pos} cannot be replayed by binreplay")
        step = self.bounds.query(control)
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
            tables=self._table_set(g), thread_id=g.thread_id,
            uses_temporary_tables=g.temp, non_transactional=g.rolled_back, from_payload=g.from_payload)

    def _table_set(self, g: OpenTransaction) -> frozenset[tuple[str, str]]:
        tables = frozenset((i.schema, i.table) for i in g.table_ids.values())
        if len(self._tables) >= _TABLE_MAP_CACHE:
            self._tables.clear()
        return self._tables.setdefault(tables, tables)

    def nested(self, f: PayloadFile, g: OpenTransaction) -> Assembler:
        """An assembler for the inner events of a compressed transaction, continuing `g` (source/payload.py)."""
        sub = Assembler(f, next_seq=self._next_seq, warn=self._warn, unknown=self._first_unknown,  # type: ignore[arg-type]
                        table_maps=self._table_maps)
        sub.bounds = self.bounds
        sub.group = OpenTransaction(0, gtid=g.gtid, timestamp=g.timestamp, from_payload=True)
        return sub

    # -- bodies ----------------------------------------------------------------------------

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

    def finish(self) -> None:
        """At the end of the file: a transaction still open never committed there."""
        g = self.group
        if g is not None and not g.empty:
            msg = (f"{self.f.path}: incomplete transaction at position {g.start} "
                   f"({len(g.spans) + len(g.pending)} events): the file ends inside it; not applied")
            self.incomplete.append(msg)
            self._warn(msg)


def _xid(body: bytes) -> int:
    return struct.unpack_from("<Q", body, 0)[0]
