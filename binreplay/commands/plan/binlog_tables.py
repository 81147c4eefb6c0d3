"""Table definitions as the binlog itself describes them, for `binreplay plan` (no server).

keys.py asks a `SchemaCache` (the target's information_schema) for columns and keys. Planning
touches no server, so this stands in for it with what TABLE_MAP events carry: column types
always, and with `binlog_row_metadata=FULL` on the source also column names, collations and the
primary key. It cannot know unique secondary keys or foreign keys (the binlog never logs them),
so row-mode estimates made with it say so; a table whose primary key the binlog does not give
is keyed as a whole, which keys.py does by itself for a table without keys.
"""

from __future__ import annotations

from typing import Any

import pymysql.charset

from binreplay.binlog import column_types as T
from binreplay.binlog import constants as C
from binreplay.binlog.column_types import RowFormatError
from binreplay.binlog.header import event_body, post_header_len
from binreplay.binlog.table_map import layout_key, parse_table_map
from binreplay.binlog.table_meta import parse_table_meta
from binreplay.errors import BadInputError
from binreplay.model import Event, FormatDescription
from binreplay.server.tables import ColumnInfo, TableInfo

_BINARY_COLLATION = 63
# information_schema DATA_TYPE for each binlog type (strings depend on the collation: see _data_type).
_DATA_TYPES = {
    T.T_TINY: "tinyint", T.T_SHORT: "smallint", T.T_INT24: "mediumint", T.T_LONG: "int",
    T.T_LONGLONG: "bigint", T.T_NEWDECIMAL: "decimal", T.T_FLOAT: "float", T.T_DOUBLE: "double",
    T.T_DATE: "date", T.T_NEWDATE: "date", T.T_TIME: "time", T.T_TIME2: "time", T.T_DATETIME: "datetime",
    T.T_DATETIME2: "datetime", T.T_TIMESTAMP: "timestamp", T.T_TIMESTAMP2: "timestamp", T.T_YEAR: "year",
    T.T_ENUM: "enum", T.T_SET: "set", T.T_BIT: "bit", T.T_JSON: "json", T.T_GEOMETRY: "geometry",
}
_TEXT_OR_BINARY = {
    T.T_STRING: ("char", "binary"), T.T_VARCHAR: ("varchar", "varbinary"), T.T_VAR_STRING: ("varchar", "varbinary"),
    T.T_VARCHAR_COMPRESSED: ("varchar", "varbinary"),
    **{t: ("text", "blob") for t in (T.T_BLOB, T.T_TINY_BLOB, T.T_MEDIUM_BLOB, T.T_LONG_BLOB, T.T_BLOB_COMPRESSED)},
}
_MAXLEN = {"latin1": 1, "ascii": 1, "binary": 1, "utf8mb3": 3, "utf8": 3, "utf8mb4": 4, "ucs2": 2, "utf16": 4,
           "utf16le": 4, "utf32": 4}
# Collations known to compare printable ASCII case-insensitively and nothing coarser (what the
# target's WEIGHT_STRING probe establishes in server/tables.py; offline we can only rely on a list).
_ASCII_FOLDING = frozenset(f"{cs}_{name}" for cs in ("utf8mb4", "utf8mb3", "utf8", "latin1", "ascii")
                           for name in ("general_ci", "unicode_ci", "unicode_520_ci", "0900_ai_ci",
                                        "swedish_ci"))


class BinlogSchema:
    """Answers keys.py's questions from the TABLE_MAP events seen so far (see `learn`)."""

    def __init__(self) -> None:
        self._tables: dict[tuple[str, str], TableInfo] = {}
        self.key_source: dict[tuple[str, str], str] = {}   # table -> how row mode keys it
        self.derived: dict[Any, Any] = {}                   # keys.py's memo, as in SchemaCache
        self._layouts: dict[bytes, tuple[TableInfo | None, str]] = {}

    def learn(self, events: list[Event], fde: FormatDescription) -> None:
        """Take the table definitions of one transaction's TABLE_MAP events (before its keys are asked)."""
        for ev in events:
            if ev.type_code == C.TABLE_MAP_EVENT:
                body, phl = event_body(ev, fde), post_header_len(fde, ev.type_code)
                layout = layout_key(body, phl)
                known = self._layouts.get(layout)
                if known is None:
                    known = self._layouts[layout] = table_from_table_map(body, phl, fde.flavor)
                info, source = known
                if info is not None:
                    self._tables[(info.schema, info.name)] = info
                    self.key_source[(info.schema, info.name)] = source

    def table(self, schema: str, name: str) -> TableInfo | None:
        return self._tables.get((schema, name))

    def invalidate(self) -> None:
        self.derived.clear()

    def charset_maxlen(self, charset: str) -> int | None:
        return _MAXLEN.get(charset)

    def ascii_folding_safe(self, charset: str, collation: str) -> bool:
        return collation in _ASCII_FOLDING


def table_from_table_map(body: bytes, phl: int, flavor: str) -> tuple[TableInfo | None, str]:
    """A TableInfo from one TABLE_MAP body, and how row mode can key the table:
    'primary key' or the reason it falls back to one key for the whole table.

    (A primary key over a column prefix is keyed on the whole value here, finer than the
    server compares it; such keys are rare enough for an estimate.)"""
    try:
        tmap = parse_table_map(body, phl)
        meta = parse_table_meta(tmap, flavor)
    except (RowFormatError, BadInputError, IndexError) as exc:
        return None, f"TABLE_MAP not readable ({exc})"
    collations = meta.collations or (None,) * tmap.column_count
    columns = []
    for i, t in enumerate(tmap.types):
        collation_id = collations[i]
        charset = collation = None
        if collation_id is not None and collation_id != _BINARY_COLLATION:
            try:
                cs = pymysql.charset.charset_by_id(collation_id)
                charset, collation = cs.name, cs.collation  # type: ignore[attr-defined]  # types-PyMySQL omits them
            except KeyError:
                pass  # a collation newer than pymysql's table: keys.py keys such a column's table whole
        columns.append(ColumnInfo(name=meta.names[i] if meta.names else f"column {i + 1}", ordinal=i,
                                  data_type=_data_type(t, collation_id), charset=charset, collation=collation,
                                  nullable=tmap.nullable[i]))
    primary = meta.primary_key or None
    if primary is not None and not all(0 <= o < tmap.column_count for o in primary):
        primary = None
    if meta.primary_key is None:
        source = "no primary key in the binlog (the source logs it with binlog_row_metadata=FULL)"
    elif primary is None:
        source = "the table has no primary key"
    elif any(columns[o].data_type in ("char", "varchar", "text") and columns[o].collation is None for o in primary):
        source = "the collation of a primary key column is unknown offline"
    else:
        source = "primary key"
    info = TableInfo(schema=tmap.schema, name=tmap.table, columns=tuple(columns), primary=primary, uniques=(),
                     fk_group=None, engine=None)
    return info, source


def _data_type(binlog_type: int, collation_id: int | None) -> str:
    pair = _TEXT_OR_BINARY.get(binlog_type)
    if pair is not None:
        return pair[1] if collation_id == _BINARY_COLLATION else pair[0]
    return _DATA_TYPES.get(binlog_type, f"binlog type {binlog_type}")
