"""What a server's information_schema says: schemas, tables, columns, unique keys, stored objects,
triggered tables, collations. One function per question, each taking a pymysql connection.

Values are decoded whatever the connection returns (str, or bytes on a raw session such as
devtools/compare.py's), through a tuple cursor (a caller's default may be a DictCursor).
Replay's own view of the target's tables, cached per schema, is tables.py's SchemaCache.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pymysql
import pymysql.cursors

from binreplay.server.sql import SYSTEM_SCHEMAS, optional_text, text

Connection = pymysql.connections.Connection
StoredObjectKind = Literal["TRIGGER", "PROCEDURE", "FUNCTION", "EVENT"]
STORED_OBJECT_KINDS: tuple[StoredObjectKind, ...] = ("TRIGGER", "PROCEDURE", "FUNCTION", "EVENT")


@dataclass(frozen=True)
class CatalogTable:
    schema: str
    name: str
    kind: str                    # TABLE_TYPE: BASE TABLE, VIEW, SEQUENCE, SYSTEM VERSIONED
    estimated_rows: int          # TABLE_ROWS (an estimate for InnoDB; 0 when unknown)


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
    return [CatalogTable(text(s), text(t), text(kind), int(text(n)) if n is not None else 0)
            for s, t, kind, n in _query(conn, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS "
                                              f"FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({_in(schemas)})",
                                        schemas)]


def table_exists(conn: Connection, schema: str, table: str) -> bool:
    return bool(_query(conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                       (schema, table)))


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


def triggered_tables(conn: Connection, exclude: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(schema, table) of every user table with a trigger (system schemas and `exclude` left out)."""
    skip = sorted(SYSTEM_SCHEMAS | set(exclude))
    return [(text(s), text(t)) for s, t in _query(
        conn, "SELECT DISTINCT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
              f"WHERE EVENT_OBJECT_SCHEMA NOT IN ({_in(skip)})", skip)]


def collations(conn: Connection) -> dict[int, tuple[str, str]]:
    """collation id -> (character set, collation), every collation of the server."""
    return {int(text(i)): (text(cs), text(co)) for i, cs, co in _query(
        conn, "SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL")}


def default_collations(conn: Connection) -> dict[str, int]:
    """character set -> the id of its default collation on the server."""
    return {text(cs): int(text(i)) for cs, i in _query(
        conn, "SELECT CHARACTER_SET_NAME, ID FROM information_schema.COLLATIONS WHERE IS_DEFAULT = 'Yes'")}
