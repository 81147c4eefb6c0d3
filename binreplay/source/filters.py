"""Which databases/tables a replay applies, and renaming databases on the way (`--rewrite-db`).

Applied by the coordinator to each transaction before anything else looks at it, so
conflict keys, BINLOG statements and generated SQL all see the same reduced transaction:

- row events of a filtered-out table are dropped with their TABLE_MAP (the statement-end
  flag moves to the last kept rows event of the statement); a transaction left with
  nothing still records its progress;
- statements (DDL, statement-based DML) are judged by the table or database they name
  when a simple parse finds it (CREATE/ALTER/DROP/TRUNCATE/RENAME TABLE, CREATE/DROP INDEX
  ... ON, CREATE/ALTER/DROP DATABASE, INSERT/REPLACE INTO, UPDATE, DELETE FROM), else by
  their default database, with a warning when a table filter could not be checked;
- renames follow the tables: `RENAME TABLE a TO b, ...` and `ALTER TABLE a ... RENAME TO b`
  are applied when the filters keep any table they name, before or after the rename, so a
  table that moves into a kept database arrives with its rows (and one that moves out leaves),
  as on the source. (`mysqlbinlog --database=d` keeps a statement only when `d` was its
  default database, whatever it renames: after `USE other; RENAME TABLE other.x TO d.x` the
  pipe's inserts into `d.x` fail.);
- `--rewrite-db from->to` renames the database in TABLE_MAP events (the raw event is
  rebuilt with a new checksum, as mysqlbinlog --rewrite-db does), in the default database
  of statements, and in statement text where the name qualifies an object (`from`.t) or
  follows DATABASE/SCHEMA; names inside string literals and comments are left alone.

Patterns are shell-style (`*`, `?`; `%` also means `*`); table patterns are `db.table`.
The options are kept sorted: their order means nothing, and the run's identity (resume)
compares them.
"""

from __future__ import annotations

import fnmatch
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from binreplay.binlog import constants as C
from binreplay.binlog.boundaries import is_transaction_control
from binreplay.binlog.header import event_body, post_header_len, table_id_len
from binreplay.binlog.rows import rows_table_id
from binreplay.errors import UsageError
from binreplay.model import Event, QueryInfo, TableMapInfo, Transaction, TrxKind
from binreplay.server.sql import quote_ident


@dataclass(frozen=True)
class Filters:
    databases: tuple[str, ...] = ()
    ignore_databases: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    ignore_tables: tuple[str, ...] = ()
    rewrite: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_options(cls, databases=(), ignore_databases=(), tables=(), ignore_tables=(),
                     rewrite_db=()) -> Filters:
        for pattern in (*tables, *ignore_tables):
            if "." not in pattern:
                raise UsageError(f"--table/--ignore-table need a schema-qualified pattern (db.table): {pattern!r}")
        pairs = []
        for spec in rewrite_db:
            src, sep, dst = spec.partition("->")
            if not sep or not src.strip() or not dst.strip():
                raise UsageError(f"--rewrite-db must look like 'from->to': {spec!r}")
            pairs.append((src.strip(), dst.strip()))
        if len({s for s, _ in pairs}) != len(pairs):
            raise UsageError("--rewrite-db names the same source database twice")
        return cls(_normal(databases), _normal(ignore_databases), _normal(tables), _normal(ignore_tables),
                   tuple(sorted(pairs)))

    def arguments(self) -> dict[str, list[str]]:
        """The options as a run records them (runs.arguments), named like their flags; only those given."""
        given = {"databases": list(self.databases), "ignore_databases": list(self.ignore_databases),
                 "tables": list(self.tables), "ignore_tables": list(self.ignore_tables),
                 "rewrite_db": [f"{src}->{dst}" for src, dst in self.rewrite]}
        return {name: values for name, values in given.items() if values}

    @property
    def active(self) -> bool:
        return bool(self.databases or self.ignore_databases or self.tables or self.ignore_tables or self.rewrite)

    # -- decisions (source names) -------------------------------------------------

    def wants_database(self, db: str) -> bool:
        if self.databases and not _any_match(self.databases, db):
            return False
        return not _any_match(self.ignore_databases, db)

    def wants_table(self, db: str, table: str) -> bool:
        if not self.wants_database(db):
            return False
        name = f"{db}.{table}"
        if self.tables and not _any_match(self.tables, name):
            return False
        return not _any_match(self.ignore_tables, name)

    def target_db(self, db: str) -> str:
        for src, dst in self.rewrite:
            if db == src:
                return dst
        return db

    def source_dbs(self, target_db: str) -> tuple[str, ...]:
        """The source databases replayed into `target_db` (none if it is only renamed away)."""
        sources = tuple(src for src, dst in self.rewrite if dst == target_db)
        renamed_away = any(src == target_db for src, _ in self.rewrite)
        return sources + (() if renamed_away else (target_db,))

    # -- transactions ---------------------------------------------------------------

    def apply(self, trx: Transaction, warn: Callable[[str], None] = lambda m: None) -> Transaction:
        """The transaction reduced to what the filters keep, with databases renamed."""
        if not self.active:
            return trx
        kept: list[Event] = []
        pending_context: list[Event] = []
        kept_ids: dict[int, bool] = {}
        statement_rows: list[int] = []   # indexes in `kept` of this statement's rows events
        data = 0
        for ev in trx.events:
            t = ev.type_code
            if t == C.TABLE_MAP_EVENT:
                info = ev.info
                assert isinstance(info, TableMapInfo)
                keep = self.wants_table(info.schema, info.table)
                kept_ids[info.table_id] = keep
                if keep:
                    kept.append(self._rewrite_table_map(ev, trx) if self.rewrite else ev)
            elif t in C.ROWS_EVENTS:
                phl = post_header_len(trx.fde, t)
                keep = kept_ids.get(rows_table_id(event_body(ev, trx.fde), phl), True)
                end = _has_stmt_end(ev, phl)
                if keep:
                    statement_rows.append(len(kept))
                    kept.append(ev)
                    data += 1
                elif end and statement_rows and not _has_stmt_end(kept[statement_rows[-1]], phl):
                    i = statement_rows[-1]
                    kept[i] = _with_stmt_end(kept[i], trx, phl)
                if end:
                    statement_rows = []
            elif t in C.STATEMENT_CONTEXT_EVENTS:
                pending_context.append(ev)
            elif t in (C.QUERY_EVENT, C.QUERY_COMPRESSED_EVENT) and not _is_control(ev):
                q = ev.info
                assert isinstance(q, QueryInfo)
                if self._wants_statement(q, trx, warn):
                    kept.extend(pending_context)
                    kept.append(self._rewrite_query(ev) if self.rewrite else ev)
                    data += 1
                pending_context = []
            else:
                kept.append(ev)
        if not data:
            # Only its progress row is left to write: no keys, no session state, so not a barrier
            # (filtered-out transactions must not serialize the replay of the rest).
            return trx.with_events(kept, tables=frozenset(), kind=TrxKind.EMPTY, uses_temporary_tables=False,
                                   non_transactional=False)
        tables = frozenset((self.target_db(s), t) for s, t in trx.tables if self.wants_table(s, t))
        return trx.with_events(kept, tables=tables)

    def _wants_statement(self, q: QueryInfo, trx: Transaction, warn: Callable[[str], None]) -> bool:
        renamed = renamed_tables(q.sql)
        if renamed is not None:
            return any(self.wants_table(db or q.db, table) for db, table in renamed)
        target = statement_target(q.sql)
        if target is not None:
            db, table = target
            db = db or q.db
            if table is None:
                return self.wants_database(db)
            return self.wants_table(db, table)
        if (self.tables or self.ignore_tables) and self.wants_database(q.db):
            warn(f"cannot tell which table the statement at {trx.start} changes; the table filters do not "
                 f"apply to it (applied: {q.sql[:80].decode('utf-8', 'replace')!r})")
        return self.wants_database(q.db) if q.db else True

    def _rewrite_table_map(self, ev: Event, trx: Transaction) -> Event:
        info = ev.info
        assert isinstance(info, TableMapInfo)
        new_db = self.target_db(info.schema)
        if new_db == info.schema:
            return ev
        phl = post_header_len(trx.fde, C.TABLE_MAP_EVENT)
        id_end = phl   # past the table id and its flags (as table_map.table_map_names reads it)
        body = event_body(ev, trx.fde)
        old_len = body[id_end]
        name = new_db.encode("utf-8")
        if len(name) > 255:
            raise UsageError(f"--rewrite-db: database name too long: {new_db!r}")
        new_body = body[:id_end] + bytes([len(name)]) + name + body[id_end + 1 + old_len:]
        return replace(ev, raw=_rebuild(ev.raw, new_body, trx.fde.has_crc32),
                       info=TableMapInfo(info.table_id, new_db, info.table))

    def _rewrite_query(self, ev: Event) -> Event:
        q = ev.info
        assert isinstance(q, QueryInfo)
        sql = rewrite_statement(q.sql, dict(self.rewrite))
        db = self.target_db(q.db) if q.db else q.db
        if sql == q.sql and db == q.db:
            return ev
        # Statements are sent as text (never as BINLOG), so only the parsed info changes.
        return replace(ev, info=replace(q, sql=sql, db=db))


def _any_match(patterns: tuple[str, ...], name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p.replace("%", "*")) for p in patterns)


def _normal(patterns) -> tuple[str, ...]:
    return tuple(sorted(set(patterns)))


def _has_stmt_end(ev: Event, phl: int) -> bool:
    flags = struct.unpack_from("<H", ev.raw, C.HEADER_LEN + table_id_len(phl))[0]
    return bool(flags & C.STMT_END_F)


def _with_stmt_end(ev: Event, trx: Transaction, phl: int) -> Event:
    body = bytearray(event_body(ev, trx.fde))
    body[table_id_len(phl)] |= C.STMT_END_F
    return replace(ev, raw=_rebuild(ev.raw, bytes(body), trx.fde.has_crc32))


def _rebuild(raw: bytes, body: bytes, crc: bool) -> bytes:
    """The event with a new body: event size and checksum recomputed, other header fields kept."""
    size = C.HEADER_LEN + len(body) + (C.CRC_LEN if crc else 0)
    header = raw[:9] + struct.pack("<I", size) + raw[13:C.HEADER_LEN]
    out = header + body
    if crc:
        out += struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)
    return out


def _is_control(ev: Event) -> bool:
    q = ev.info
    return isinstance(q, QueryInfo) and is_transaction_control(q.sql)


# --- statement text ------------------------------------------------------------------

_IDENT = rb"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$\x80-\xff]+)"
_NAME = rb"(?P<first>" + _IDENT + rb")(?:\s*\.\s*(?P<second>" + _IDENT + rb"))?"
_TARGET_PATTERNS = [
    (re.compile(rb"^\s*(?:CREATE|ALTER|DROP|TRUNCATE|RENAME)\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?(?:ONLINE\s+)?"
                rb"(?:IGNORE\s+)?TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?" + _NAME, re.I), "table"),
    (re.compile(rb"^\s*(?:CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+"
                rb"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?" + _IDENT + rb"\s+ON\s+" + _NAME, re.I), "table"),
    (re.compile(rb"^\s*(?:CREATE|ALTER|DROP)\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
                rb"(?P<first>" + _IDENT + rb")", re.I), "database"),
    (re.compile(rb"^\s*(?:INSERT|REPLACE)\s+(?:LOW_PRIORITY\s+|DELAYED\s+|HIGH_PRIORITY\s+)?(?:IGNORE\s+)?"
                rb"(?:INTO\s+)?" + _NAME, re.I), "table"),
    (re.compile(rb"^\s*UPDATE\s+(?:LOW_PRIORITY\s+)?(?:IGNORE\s+)?" + _NAME + rb"\s+(?:AS\s+\S+\s+)?SET\b", re.I),
     "table"),
    (re.compile(rb"^\s*DELETE\s+(?:LOW_PRIORITY\s+)?(?:QUICK\s+)?(?:IGNORE\s+)?FROM\s+" + _NAME +
                rb"\s*(?:$|WHERE\b|ORDER\b|LIMIT\b|RETURNING\b)", re.I), "table"),
]


def _unquote(ident: bytes) -> str:
    if ident.startswith(b"`"):
        ident = ident[1:-1].replace(b"``", b"`")
    return ident.decode("utf-8", "surrogateescape")


def statement_target(sql: bytes) -> tuple[str | None, str | None] | None:
    """(database or None for the default one, table or None) a simple statement changes; None if unknown.

    Multi-table statements (RENAME TABLE a TO b, c TO d; DROP TABLE a, b; joins) report
    their first table only, so they are treated as unknown."""
    text = _strip_leading_comments(sql)
    for pattern, what in _TARGET_PATTERNS:
        m = pattern.match(text)
        if m is None:
            continue
        rest = text[m.end():].lstrip()
        if what == "table" and (rest.startswith(b",") or re.match(rb"(?i)TO\b", rest) and b"," in rest):
            return None
        first, second = m.group("first"), m.groupdict().get("second")
        if what == "database":
            return _unquote(first), None
        if second is not None:
            return _unquote(first), _unquote(second)
        return None, _unquote(first)
    return None


_RENAME_TABLE = re.compile(rb"^\s*RENAME\s+TABLES?\s+(?:IF\s+EXISTS\s+)?", re.I)
_RENAME_PAIR = re.compile(rb"\s*(?P<old>" + _IDENT + rb"(?:\s*\.\s*" + _IDENT + rb")?)(?:\s+(?:WAIT\s+\d+|NOWAIT))?"
                          rb"\s+TO\s+(?P<new>" + _IDENT + rb"(?:\s*\.\s*" + _IDENT + rb")?)\s*(?P<more>,)?", re.I)
_ALTER_TABLE = re.compile(rb"^\s*ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?"
                          rb"(?P<old>" + _IDENT + rb"(?:\s*\.\s*" + _IDENT + rb")?)", re.I)
_ALTER_RENAME = re.compile(rb"(?:\s|,)RENAME\s+(?:TO\s+|AS\s+)?(?!(?:COLUMN|INDEX|KEY)\b)"
                           rb"(?P<new>" + _IDENT + rb"(?:\s*\.\s*" + _IDENT + rb")?)", re.I)
_STRINGS = re.compile(rb"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"", re.S)
_QUALIFIED = re.compile(rb"(?P<first>" + _IDENT + rb")(?:\s*\.\s*(?P<second>" + _IDENT + rb"))?")


def renamed_tables(sql: bytes) -> list[tuple[str | None, str]] | None:
    """Every (database or None for the default one, table) a RENAME TABLE or an ALTER TABLE ...
    RENAME names, old and new names both; None for any other statement (or one not parsed)."""
    text = _strip_leading_comments(sql)
    names: list[bytes] = []
    m = _RENAME_TABLE.match(text)
    if m is not None:
        at = m.end()
        while True:
            pair = _RENAME_PAIR.match(text, at)
            if pair is None:
                return None
            names += [pair.group("old"), pair.group("new")]
            at = pair.end()
            if pair.group("more") is None:
                break
        if text[at:].strip(b"; \t\r\n"):
            return None
    else:
        m = _ALTER_TABLE.match(text)
        if m is None:
            return None
        new = _ALTER_RENAME.search(_STRINGS.sub(b"''", text), m.end())   # (not inside a COMMENT '...')
        if new is None:
            return None
        names += [m.group("old"), new.group("new")]
    out: list[tuple[str | None, str]] = []
    for name in names:
        q = _QUALIFIED.fullmatch(name)
        assert q is not None
        first, second = _unquote(q.group("first")), q.group("second")
        out.append((first, _unquote(second)) if second is not None else (None, first))
    return out


def _strip_leading_comments(sql: bytes) -> bytes:
    text = sql.lstrip()
    while text.startswith(b"/*") and not text.startswith(b"/*!"):
        end = text.find(b"*/")
        if end < 0:
            break
        text = text[end + 2:].lstrip()
    return text


_TOKEN = re.compile(
    rb"(?P<skip>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|--[ \t][^\n]*|#[^\n]*|/\*(?!!).*?\*/)"
    rb"|(?P<ident>`(?:[^`]|``)+`|[A-Za-z0-9_$\x80-\xff]+)", re.S)
_DB_KEYWORDS = (b"DATABASE", b"SCHEMA", b"USE")
_SKIP_WORDS = (b"IF", b"NOT", b"EXISTS")


def rewrite_statement(sql: bytes, rename: dict[str, str]) -> bytes:
    """Rename databases where the statement text names them as a qualifier or after DATABASE/SCHEMA/USE."""
    out: list[bytes] = []
    last = 0
    after_db_keyword = False
    for m in _TOKEN.finditer(sql):
        ident = m.group("ident")
        if ident is None:
            continue
        word = ident.upper()
        name = _unquote(ident)
        qualifies = re.match(rb"\s*\.", sql[m.end():]) is not None and not re.match(rb"\s*\.\s*\d", sql[m.end():])
        if name in rename and (qualifies or after_db_keyword) and not _preceded_by_dot(sql, m.start()):
            out.append(sql[last:m.start()])
            out.append(quote_ident(rename[name]).encode("utf-8"))
            last = m.end()
        if word in _DB_KEYWORDS:
            after_db_keyword = True
        elif not (after_db_keyword and word in _SKIP_WORDS):
            after_db_keyword = False
    out.append(sql[last:])
    return b"".join(out)


def _preceded_by_dot(sql: bytes, pos: int) -> bool:
    return sql[:pos].rstrip().endswith(b".")
