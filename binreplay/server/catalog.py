"""What a server's information_schema says: schemas, tables, columns, unique keys, foreign keys,
stored objects, triggered tables, collations and character sets, a digest of the user schemas'
definitions, the process list. One function per question, each taking a pymysql connection; no
other module of binreplay queries information_schema.

Values are decoded whatever the connection returns (str, or bytes on a raw session such as
devtools/compare.py's), through a tuple cursor (a caller's default may be a DictCursor).
Replay's own view of the target's tables, cached per schema, is tables.py's SchemaCache, built
from the `schema_*` questions below (names there are read with str() as SchemaCache always did).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pymysql
import pymysql.cursors

from binreplay.errors import Fault, classify
from binreplay.server.sql import SYSTEM_SCHEMAS, optional_text, quote_string, text

Connection = pymysql.connections.Connection
StoredObjectKind = Literal["TRIGGER", "PROCEDURE", "FUNCTION", "EVENT"]
STORED_OBJECT_KINDS: tuple[StoredObjectKind, ...] = ("TRIGGER", "PROCEDURE", "FUNCTION", "EVENT")


@dataclass(frozen=True)
class CatalogTable:
    schema: str
    name: str
    kind: str                    # TABLE_TYPE: BASE TABLE, VIEW, SEQUENCE, SYSTEM VERSIONED
    estimated_rows: int          # TABLE_ROWS (an estimate for InnoDB; 0 when unknown)
    engine: str | None = None    # ENGINE (None for a view)


@dataclass(frozen=True)
class CatalogColumn:
    schema: str
    table: str
    name: str
    data_type: str               # DATA_TYPE, lower case
    column_type: str             # full COLUMN_TYPE, e.g. 'bigint(20) unsigned'
    nullable: bool
    collation: str | None


@dataclass(frozen=True)
class TableColumn:
    """What `--apply sql` needs of one target column."""

    name: str
    unsigned: bool
    charset: str | None          # CHARACTER_SET_NAME (None: not a character column)
    generated: bool              # a generated column: the target computes it


@dataclass(frozen=True)
class SchemaColumn:
    """One column of a schema's table as replay's table view (tables.py) reads it."""

    table: str
    name: str
    ordinal: int                 # ORDINAL_POSITION (1-based)
    data_type: str               # DATA_TYPE, lower case
    charset: str | None          # CHARACTER_SET_NAME (None: not a character column)
    collation: str | None
    column_type: str             # full COLUMN_TYPE, lower case
    nullable: bool
    fsp: int                     # DATETIME_PRECISION (0: none)


@dataclass(frozen=True)
class UniqueIndexPart:
    """One part of a primary or unique index, in index order."""

    table: str
    index: str                   # PRIMARY for the primary key
    column: str | None           # None: the part is an expression (MySQL functional index)
    sub_part: int | None         # the prefix length (characters or bytes), None: the whole column
    index_type: str              # INDEX_TYPE: BTREE, HASH (MariaDB's long UNIQUE), ...


@dataclass(frozen=True)
class ProcessEntry:
    """A connection as information_schema.PROCESSLIST shows it."""

    user: str
    host: str
    time_s: int                  # TIME: seconds in its current state


@dataclass(frozen=True)
class UniqueKey:
    schema: str
    table: str
    name: str                    # PRIMARY for the primary key
    columns: tuple[str, ...]     # in key order
    nullable: bool               # some column may be NULL (rows with a NULL are not unique by it)


def _query(conn: Connection, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _in(schemas: Sequence[str]) -> str:
    return ",".join(["%s"] * len(schemas))


def schema_names(conn: Connection) -> set[str]:
    """Every schema on the server, the server's own included."""
    return {text(name) for (name,) in _query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}


def user_schemas(conn: Connection, exclude: Iterable[str] = ()) -> list[str]:
    """User schemas on the server, sorted (system schemas and `exclude` left out)."""
    return sorted(schema_names(conn) - SYSTEM_SCHEMAS - set(exclude))


def tables(conn: Connection, schemas: Sequence[str]) -> list[CatalogTable]:
    """Tables, views and sequences of the schemas."""
    if not schemas:
        return []
    return [CatalogTable(text(s), text(t), text(kind), int(text(n)) if n is not None else 0, optional_text(e))
            for s, t, kind, n, e in _query(conn, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS, ENGINE "
                                                 "FROM information_schema.TABLES "
                                                 f"WHERE TABLE_SCHEMA IN ({_in(schemas)})", schemas)]


@dataclass(frozen=True)
class IndexPart:
    schema: str
    table: str
    index: str                   # PRIMARY for the primary key
    unique: bool
    column: str | None           # None: the part is an expression (MySQL functional index)
    sub_part: int | None         # the prefix length, None: the whole column
    index_type: str              # BTREE, HASH, FULLTEXT, SPATIAL


def index_parts(conn: Connection, schemas: Sequence[str]) -> list[IndexPart]:
    """The parts of every index of the schemas' tables, by table, index, position."""
    if not schemas:
        return []
    return [IndexPart(text(s), text(t), text(i), not int(text(nu)), optional_text(c),
                      int(text(sp)) if sp is not None else None, text(it))
            for s, t, i, nu, c, sp, it in _query(
                conn, "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE "
                      f"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({_in(schemas)}) "
                      "ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX", schemas)]


@dataclass(frozen=True)
class CatalogTrigger:
    schema: str
    table: str
    name: str
    timing: str                  # BEFORE, AFTER
    event: str                   # INSERT, UPDATE, DELETE
    order: int                   # ACTION_ORDER among the table's triggers of that timing and event
    body: str                    # ACTION_STATEMENT


def triggers(conn: Connection, schemas: Sequence[str]) -> list[CatalogTrigger]:
    """The triggers of the schemas' tables."""
    if not schemas:
        return []
    return [CatalogTrigger(text(s), text(t), text(n), text(ti), text(ev), int(text(o)), text(b))
            for s, t, n, ti, ev, o, b in _query(
                conn, "SELECT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, "
                      "EVENT_MANIPULATION, ACTION_ORDER, ACTION_STATEMENT FROM information_schema.TRIGGERS "
                      f"WHERE EVENT_OBJECT_SCHEMA IN ({_in(schemas)})", schemas)]


def table_exists(conn: Connection, schema: str, table: str) -> bool:
    return bool(_query(conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                       (schema, table)))


def column_exists(conn: Connection, schema: str, table: str, column: str) -> bool:
    return bool(_query(conn, "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                             "AND COLUMN_NAME=%s", (schema, table, column)))


def columns(conn: Connection, schemas: Sequence[str]) -> list[CatalogColumn]:
    """Every column (INVISIBLE ones included) of the schemas' tables, in table and column order."""
    if not schemas:
        return []
    return [CatalogColumn(text(s), text(t), text(name), text(data_type).lower(), text(column_type),
                          text(nullable) == "YES", optional_text(collation))
            for s, t, name, data_type, column_type, nullable, collation in _query(
                conn, "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, "
                      f"COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({_in(schemas)}) "
                      "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION", schemas)]


def table_columns(conn: Connection, schema: str,
                  table: str) -> tuple[tuple[TableColumn, ...], tuple[str, ...]] | None:
    """One table's columns (in order) and its primary key's columns, or None if there is no such table."""
    cols = tuple(TableColumn(text(n), " unsigned" in text(t).lower(), text(c) if c else None, bool(g))
                 for n, t, c, g in _query(
                     conn, "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, GENERATION_EXPRESSION "
                           "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                           "ORDER BY ORDINAL_POSITION", (schema, table)))
    if not cols:
        return None
    primary = _query(conn, "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s AND "
                           "TABLE_NAME=%s AND INDEX_NAME='PRIMARY' ORDER BY SEQ_IN_INDEX", (schema, table))
    return cols, tuple(text(name) for (name,) in primary)


def unique_keys(conn: Connection, schemas: Sequence[str]) -> list[UniqueKey]:
    """The primary and unique keys of the schemas' tables: per table the primary key first, then by name."""
    if not schemas:
        return []
    keys: dict[tuple[str, str, str], tuple[list[str], list[bool]]] = {}
    for s, t, index, column, nullable in _query(
            conn, "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE "
                  f"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({_in(schemas)}) AND NON_UNIQUE = 0 "
                  "ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX", schemas):
        names, nulls = keys.setdefault((text(s), text(t), text(index)), ([], []))
        names.append(text(column))
        nulls.append(optional_text(nullable) == "YES")
    return [UniqueKey(s, t, index, tuple(names), any(nulls)) for (s, t, index), (names, nulls) in keys.items()]


_STORED_OBJECTS: dict[str, str] = {
    "TRIGGER": "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
    "PROCEDURE": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES "
                 "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = 'PROCEDURE'",
    "FUNCTION": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = 'FUNCTION'",
    "EVENT": "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
}


def stored_object_names(conn: Connection, schema: str, kind: StoredObjectKind) -> set[str]:
    """Names of the schema's triggers, procedures, functions or events."""
    return {text(name) for (name,) in _query(conn, _STORED_OBJECTS[kind], (schema,))}


def table_triggers(conn: Connection, exclude: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(schema, table, trigger) of every trigger on a user table (system schemas and `exclude` left
    out; a trigger lives in its table's schema)."""
    skip = sorted(SYSTEM_SCHEMAS | set(exclude))
    return [(text(s), text(t), text(n)) for s, t, n in _query(
        conn, "SELECT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS "
              f"WHERE EVENT_OBJECT_SCHEMA NOT IN ({_in(skip)})", skip)]


def collations(conn: Connection) -> dict[int, tuple[str, str]]:
    """collation id -> (character set, collation), every collation of the server."""
    return {int(text(i)): (text(cs), text(co)) for i, cs, co in _query(
        conn, "SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL")}


def default_collations(conn: Connection) -> dict[str, int]:
    """character set -> the id of its default collation on the server."""
    return {text(cs): int(text(i)) for cs, i in _query(
        conn, "SELECT CHARACTER_SET_NAME, ID FROM information_schema.COLLATIONS WHERE IS_DEFAULT = 'Yes'")}


def charset_max_lengths(conn: Connection) -> dict[str, int]:
    """character set -> bytes per character at most, every character set of the server."""
    return {str(cs): int(n) for cs, n in _query(
        conn, "SELECT CHARACTER_SET_NAME, MAXLEN FROM information_schema.CHARACTER_SETS")}


# -- one schema's tables, as replay's table view (tables.py's SchemaCache) reads them ---------------


def schema_columns(conn: Connection, schema: str) -> list[SchemaColumn]:
    """Every column of the schema's tables, in table and column order."""
    return [SchemaColumn(str(table), str(name), int(ordinal), text(data_type).lower(), optional_text(charset),
                         optional_text(collation), text(column_type).lower(), nullable == "YES", int(fsp or 0))
            for table, name, ordinal, data_type, charset, collation, column_type, nullable, fsp in _query(
                conn, "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, CHARACTER_SET_NAME, "
                      "COLLATION_NAME, COLUMN_TYPE, IS_NULLABLE, DATETIME_PRECISION "
                      "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                      "ORDER BY TABLE_NAME, ORDINAL_POSITION", (schema,))]


def schema_unique_index_parts(conn: Connection, schema: str) -> list[UniqueIndexPart]:
    """The parts of every primary and unique index of the schema's tables, by table, index, position."""
    return [UniqueIndexPart(str(table), str(index), str(column) if column is not None else None,
                            int(sub_part) if sub_part is not None else None, text(index_type))
            for table, index, column, sub_part, index_type in _query(
                conn, "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, SUB_PART, INDEX_TYPE "
                      "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND NON_UNIQUE = 0 "
                      "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX", (schema,))]


def schema_table_engines(conn: Connection, schema: str) -> dict[str, tuple[str | None, str]]:
    """table -> (ENGINE as the server returns it, None for a view; TABLE_TYPE) of the schema's tables."""
    return {str(t): (e, text(k)) for t, e, k in _query(
        conn, "SELECT TABLE_NAME, ENGINE, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
        (schema,))}


def foreign_key_references(conn: Connection) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """((schema, table), (referenced schema, table)) of every foreign key on the server."""
    return [((str(a), str(b)), (str(c), str(d))) for a, b, c, d in _query(
        conn, "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME "
              "FROM information_schema.REFERENTIAL_CONSTRAINTS")]


# -- whether a DDL took effect (state/store.py's journal) -------------------------------------------

# What a digest part aggregates: count, sum and bit-xor of the CRC32s of its rows' text.
_AGGREGATE = "SELECT COUNT(*), COALESCE(SUM(CRC32(x)),0), COALESCE(BIT_XOR(CRC32(x)),0) FROM ({rows}) s"

# The server's own tables a statement outside every table schema writes: accounts, roles and
# privileges (CREATE USER/ROLE, GRANT, REVOKE, SET PASSWORD, ...), CREATE SERVER, INSTALL PLUGIN.
# Never mysql.event (the event scheduler updates it), nor statistics (written in the background).
_OWN_TABLES = ("global_priv", "roles_mapping", "db", "tables_priv", "columns_priv", "procs_priv",
               "proxies_priv", "servers", "plugin")


# The parts of a digest, in order; `DigestParts.unreadable` names those the session could not read.
DIGEST_PARTS = ("definitions", "innodb table ids", "other engines", "accounts and privileges")
_OPTIONAL_PARTS = {1: "PROCESS (InnoDB's table list)", 3: "SELECT on mysql.*"}


def definitions_digest(conn: Connection, exclude: Iterable[str] = ()) -> tuple[object, ...]:
    """What any DDL changes when it takes effect, as a tuple to compare before and after (system
    schemas and `exclude` left out), in four parts (`DIGEST_PARTS`):

    - definitions: every user table's (with its options and comment), column's, index's, foreign
      key's, check constraint's, partition's, schema's, view's, routine's, trigger's and event's
      definition;
    - identities: each InnoDB table's id by name (a RENAME that swaps two tables of one definition,
      EXCHANGE PARTITION, TRUNCATE: same definitions, other tables);
    - for the other engines that keep their tables on disk (MyISAM, Aria, ...: no id to read), their
      rows, data length and creation time. Never a MEMORY table's: a restart of the server empties
      it and gives it a new creation time, without any DDL;
    - the server's own tables that statements outside table schemas write (`_OWN_TABLES`).

    Nothing in it changes without DDL while nothing else is applied (the DDL is a barrier), also
    across a restart of the server. A part the session may not read (PROCESS for InnoDB's table
    list, SELECT on `mysql`) is None: it can tell nothing apart (`unreadable_parts`)."""
    excluded = sorted(SYSTEM_SCHEMAS | set(exclude))
    not_in = f"NOT IN ({','.join(quote_string(s) for s in excluded)})"
    return (_aggregate(conn, _DEFINITIONS.format(not_in=not_in)),
            _optional(conn, lambda: _aggregate(conn, _INNODB_IDS.format(
                not_like=" AND ".join(f"NAME NOT LIKE {quote_string(s + '/%')}" for s in excluded)))),
            _aggregate(conn, _OTHER_ENGINES.format(not_in=not_in)),
            _optional(conn, lambda: tuple(optional_text(row[1]) for row in _query(
                conn, "CHECKSUM TABLE " + ", ".join(f"mysql.{t}" for t in _OWN_TABLES)))))


def unreadable_parts(digest: tuple[object, ...]) -> list[str]:
    """The privileges missing for the parts of `definitions_digest` the session could not read."""
    return [need for index, need in _OPTIONAL_PARTS.items() if digest[index] is None]


_DEFINITIONS = (
    " SELECT CONCAT_WS('|','t',TABLE_SCHEMA,TABLE_NAME,TABLE_TYPE,ENGINE,CREATE_OPTIONS,MD5(TABLE_COMMENT)) x"
    "  FROM information_schema.TABLES WHERE TABLE_SCHEMA {not_in}"
    " UNION ALL SELECT CONCAT_WS('|','c',TABLE_SCHEMA,TABLE_NAME,COLUMN_NAME,ORDINAL_POSITION,COLUMN_TYPE,"
    "  IS_NULLABLE,COALESCE(COLUMN_DEFAULT,'<null>'),EXTRA,COALESCE(COLLATION_NAME,''),MD5(COLUMN_COMMENT))"
    "  FROM information_schema.COLUMNS WHERE TABLE_SCHEMA {not_in}"
    " UNION ALL SELECT CONCAT_WS('|','i',TABLE_SCHEMA,TABLE_NAME,INDEX_NAME,SEQ_IN_INDEX,COLUMN_NAME,NON_UNIQUE)"
    "  FROM information_schema.STATISTICS WHERE TABLE_SCHEMA {not_in}"
    # Foreign keys: an ADD FOREIGN KEY under foreign_key_checks=0 runs in place (same table id, an
    # index that was there already).
    " UNION ALL SELECT CONCAT_WS('|','f',CONSTRAINT_SCHEMA,TABLE_NAME,CONSTRAINT_NAME,UNIQUE_CONSTRAINT_SCHEMA,"
    "  REFERENCED_TABLE_NAME,UNIQUE_CONSTRAINT_NAME,MATCH_OPTION,UPDATE_RULE,DELETE_RULE)"
    "  FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA {not_in}"
    " UNION ALL SELECT CONCAT_WS('|','k',TABLE_SCHEMA,TABLE_NAME,CONSTRAINT_NAME,COLUMN_NAME,ORDINAL_POSITION,"
    "  REFERENCED_TABLE_SCHEMA,REFERENCED_TABLE_NAME,REFERENCED_COLUMN_NAME)"
    "  FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA {not_in} AND REFERENCED_TABLE_NAME IS NOT NULL"
    " UNION ALL SELECT CONCAT_WS('|','x',CONSTRAINT_SCHEMA,TABLE_NAME,CONSTRAINT_NAME,MD5(CHECK_CLAUSE))"
    "  FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA {not_in}"
    # Partitioning (names, methods, expressions, bounds: never the row counts).
    " UNION ALL SELECT CONCAT_WS('|','p',TABLE_SCHEMA,TABLE_NAME,PARTITION_NAME,SUBPARTITION_NAME,"
    "  PARTITION_ORDINAL_POSITION,SUBPARTITION_ORDINAL_POSITION,PARTITION_METHOD,SUBPARTITION_METHOD,"
    "  MD5(PARTITION_EXPRESSION),MD5(SUBPARTITION_EXPRESSION),MD5(PARTITION_DESCRIPTION),MD5(PARTITION_COMMENT))"
    "  FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA {not_in} AND PARTITION_NAME IS NOT NULL"
    " UNION ALL SELECT CONCAT_WS('|','s',SCHEMA_NAME,DEFAULT_CHARACTER_SET_NAME,DEFAULT_COLLATION_NAME)"
    "  FROM information_schema.SCHEMATA WHERE SCHEMA_NAME {not_in}"
    " UNION ALL SELECT CONCAT_WS('|','v',TABLE_SCHEMA,TABLE_NAME,MD5(VIEW_DEFINITION))"
    "  FROM information_schema.VIEWS WHERE TABLE_SCHEMA {not_in}"
    " UNION ALL SELECT CONCAT_WS('|','r',ROUTINE_SCHEMA,ROUTINE_NAME,ROUTINE_TYPE,MD5(ROUTINE_DEFINITION))"
    "  FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA {not_in}"
    " UNION ALL SELECT CONCAT_WS('|','g',TRIGGER_SCHEMA,TRIGGER_NAME,MD5(ACTION_STATEMENT))"
    "  FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA {not_in}"
    " UNION ALL SELECT CONCAT_WS('|','e',EVENT_SCHEMA,EVENT_NAME,DEFINER,MD5(EVENT_DEFINITION),EVENT_TYPE,"
    "  EXECUTE_AT,INTERVAL_VALUE,INTERVAL_FIELD,STARTS,ENDS,STATUS,ON_COMPLETION)"
    "  FROM information_schema.EVENTS WHERE EVENT_SCHEMA {not_in}")
# InnoDB's own names: `schema/table` (partitions `schema/table#P#p0`).
_INNODB_IDS = "SELECT CONCAT_WS('|',NAME,TABLE_ID) x FROM information_schema.INNODB_SYS_TABLES WHERE {not_like}"
# Exact for MyISAM, Aria (InnoDB's TABLE_ROWS is an estimate, and its ids say more). Content, but
# nothing else writes it while a DDL is pending, and it survives a restart; MEMORY tables' does not.
_OTHER_ENGINES = ("SELECT CONCAT_WS('|',TABLE_SCHEMA,TABLE_NAME,TABLE_ROWS,DATA_LENGTH,CREATE_TIME) x "
                  "FROM information_schema.TABLES WHERE TABLE_SCHEMA {not_in} "
                  "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND ENGINE NOT IN ('InnoDB', 'MEMORY')")


def _aggregate(conn: Connection, rows: str) -> tuple[int, int, int]:
    count, crc_sum, crc_xor = (int(v) for v in _query(conn, _AGGREGATE.format(rows=rows))[0])
    return count, crc_sum, crc_xor


def _optional(conn: Connection, read: Callable[[], object]) -> object:
    """`read()`, or None when the session lacks the privilege it needs (the same on every call)."""
    try:
        return read()
    except pymysql.err.MySQLError as exc:
        if classify(exc) is Fault.PRIVILEGE:
            return None
        raise


# -- the process list --------------------------------------------------------------------------------


def process_entry(conn: Connection, connection_id: int) -> ProcessEntry | None:
    """The process list's entry of one connection (None: no such connection, or gone)."""
    rows = _query(conn, "SELECT USER, HOST, TIME FROM information_schema.PROCESSLIST WHERE ID = %s", (connection_id,))
    return ProcessEntry(*rows[0]) if rows else None


def session_busy(conn: Connection, connection_id: int) -> bool:
    """Whether a connection (not this one) is executing a statement (False: idle, or gone)."""
    rows = _query(conn, "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE ID = %s AND ID <> CONNECTION_ID()",
                  (connection_id,))
    return bool(rows) and text(rows[0][0]) != "Sleep"   # "Killed": still rolling back


def session_running(conn: Connection, connection_id: int, statement: bytes) -> bool:
    """Whether a connection (not this one) is executing `statement` (or the packet that holds it):
    after a restart of the server connection ids start again, and another session (a replica's
    Binlog Dump, a daemon, a client) may have the id. Compared by the statement's first characters
    (up to the first that is not ASCII: the process list shows the text in its own character set);
    a statement without such a beginning is taken as running while the connection is busy."""
    rows = _query(conn, "SELECT COMMAND, INFO FROM information_schema.PROCESSLIST WHERE ID = %s "
                        "AND ID <> CONNECTION_ID()", (connection_id,))
    if not rows or text(rows[0][0]) == "Sleep":   # "Killed": still rolling back
        return False
    head = statement.strip()[:80]
    ascii_head = head[:next((i for i, b in enumerate(head) if b >= 0x80), len(head))].decode("ascii")
    raw = rows[0][1]
    info = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else optional_text(raw)
    if not ascii_head:
        return True
    return info is not None and ascii_head in info
