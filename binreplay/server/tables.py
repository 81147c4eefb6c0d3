"""What the target says about tables: columns, keys, foreign-key groups, collations.

Conflict keys (`binreplay.schedule.keys`) are derived from this. Everything is loaded
lazily, one schema at a time (a query per information_schema table per schema,
never per table: catalog.py's `schema_*` questions), and kept until `invalidate()` (after any DDL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pymysql

from binreplay.server import catalog
from binreplay.server.sql import quote_ident

# Printable ASCII: the probes of `ascii_folding_safe`.
_PROBE_CHARS = tuple(range(0x20, 0x7F))


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    ordinal: int                 # 0-based, = position in the row image
    data_type: str               # information_schema DATA_TYPE, lower-case
    charset: str | None          # None for binary strings and non-strings
    collation: str | None
    column_type: str = ""        # full COLUMN_TYPE, e.g. 'bigint(20) unsigned'
    nullable: bool = True
    fsp: int = 0                 # fractional seconds of TIME/DATETIME/TIMESTAMP

    @property
    def unsigned(self) -> bool:
        return " unsigned" in self.column_type


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    primary: tuple[int, ...] | None
    uniques: tuple[tuple[str, tuple[int, ...]], ...]   # (index name, ordinals), PRIMARY excluded
    fk_group: str | None
    engine: str | None
    # (index name, characters/bytes per column or None) for indexes with any column prefix,
    # PRIMARY included. The server compares only that prefix, so keys must too.
    prefixes: tuple[tuple[str, tuple[int | None, ...]], ...] = ()
    # Unique indexes whose parts are expressions (MySQL functional indexes): no column to key on.
    opaque_uniques: tuple[str, ...] = ()
    # MariaDB row images end with columns information_schema.COLUMNS does not show: the
    # implicit row_start/row_end of a table WITH SYSTEM VERSIONING (unless declared), then
    # a BIGINT hash per long UNIQUE (USING HASH) index.
    hash_uniques: int = 0
    system_versioned: bool = False

    def prefix_lengths(self, index: str) -> tuple[int | None, ...] | None:
        for name, lengths in self.prefixes:
            if name == index:
                return lengths
        return None


@dataclass
class _Index:
    name: str
    columns: list[str] = field(default_factory=list)
    sub_parts: list[int | None] = field(default_factory=list)
    opaque: bool = False
    hashed: bool = False


class SchemaCache:
    """Table definitions of the target, loaded per schema on first use."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._schemas: dict[str, dict[str, TableInfo]] = {}
        self._fk_groups: dict[tuple[str, str], str] | None = None
        self._folding: dict[tuple[str, str], bool] = {}
        self._charset_maxlen: dict[str, int] | None = None
        # Memo for data derived from table definitions (keys.py's per-table plans);
        # cleared together with everything else.
        self.derived: dict[Any, Any] = {}

    def use_connection(self, conn: Any) -> None:
        """Go on through another connection (the old one was lost); what was loaded stays."""
        self.conn = conn

    def invalidate(self) -> None:
        self._schemas.clear()
        self._fk_groups = None
        self.derived.clear()

    def table(self, schema: str, name: str) -> TableInfo | None:
        tables = self._schema_tables(schema)
        info = tables.get(name)
        if info is None:
            # lower_case_table_names may differ between source and target: a table the
            # target knows under another case is the same table (its FKs must count).
            matches = [t for n, t in tables.items() if n.lower() == name.lower()]
            info = matches[0] if len(matches) == 1 else None
        return info

    # -- loading ---------------------------------------------------------------

    def _query(self, sql: str, *args: Any) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())

    def _schema_tables(self, schema: str) -> dict[str, TableInfo]:
        tables = self._schemas.get(schema)
        if tables is None:
            tables = self._load_schema(schema)
            if not tables:
                tables = self._load_schema_other_case(schema)
            self._schemas[schema] = tables
        return tables

    def _load_schema_other_case(self, schema: str) -> dict[str, TableInfo]:
        names = [n for n in catalog.schema_names(self.conn) if n.lower() == schema.lower() and n != schema]
        return self._load_schema(names[0]) if len(names) == 1 else {}

    def _load_schema(self, schema: str) -> dict[str, TableInfo]:
        columns = self._load_columns(schema)
        if not columns:
            return {}
        indexes = self._load_unique_indexes(schema)
        kinds = catalog.schema_table_engines(self.conn, schema)
        groups = self._groups()
        return {name: _table_info(schema, name, cols, indexes.get(name, []), groups.get((schema, name)),
                                  *kinds.get(name, (None, "")))
                for name, cols in columns.items()}

    def _load_columns(self, schema: str) -> dict[str, tuple[ColumnInfo, ...]]:
        out: dict[str, list[ColumnInfo]] = {}
        for c in catalog.schema_columns(self.conn, schema):
            cols = out.setdefault(c.table, [])
            cols.append(ColumnInfo(
                name=c.name, ordinal=len(cols), data_type=c.data_type, charset=c.charset, collation=c.collation,
                column_type=c.column_type, nullable=c.nullable, fsp=c.fsp))
            if c.ordinal != len(cols):
                raise RuntimeError(f"information_schema.COLUMNS of {schema}.{c.table} has a gap in ORDINAL_POSITION")
        return {t: tuple(c) for t, c in out.items()}

    def _load_unique_indexes(self, schema: str) -> dict[str, list[_Index]]:
        out: dict[str, dict[str, _Index]] = {}
        for part in catalog.schema_unique_index_parts(self.conn, schema):
            ix = out.setdefault(part.table, {}).setdefault(part.index, _Index(part.index))
            if part.column is None:
                ix.opaque = True
            else:
                ix.columns.append(part.column)
                ix.sub_parts.append(part.sub_part)
            ix.hashed = part.index_type.upper() == "HASH"
        return {t: list(ixs.values()) for t, ixs in out.items()}

    def _groups(self) -> dict[tuple[str, str], str]:
        if self._fk_groups is None:
            self._fk_groups = fk_groups(catalog.foreign_key_references(self.conn))
        return self._fk_groups

    # -- collations ---------------------------------------------------------------

    def charset_maxlen(self, charset: str) -> int | None:
        """Bytes per character at most (1 = single-byte charset); None if unknown."""
        if self._charset_maxlen is None:
            self._charset_maxlen = catalog.charset_max_lengths(self.conn)
        return self._charset_maxlen.get(charset)

    def ascii_folding_safe(self, charset: str, collation: str) -> bool:
        """Does this collation compare printable ASCII like lower-casing does, or more finely?

        keys.py folds ASCII strings with lower(); that is only coarser-or-equal if
        the collation never equates two printable ASCII characters that lower()
        keeps apart, and never ignores one. Asked of the server itself (one query per
        collation, WEIGHT_STRING of 'x?x'), so legacy collations with odd ASCII
        orderings (swe7, ...) are caught.
        """
        key = (charset, collation)
        if key not in self._folding:
            self._folding[key] = self._probe_folding(charset, collation)
        return self._folding[key]

    def _probe_folding(self, charset: str, collation: str) -> bool:
        probes = [b"xx"] + [b"x" + bytes([c]) + b"x" for c in _PROBE_CHARS]
        converted = f"USING {quote_ident(charset)}) COLLATE {quote_ident(collation)})"
        exprs = ", ".join(f"WEIGHT_STRING(CONVERT(_latin1 X'{p.hex()}' {converted}" for p in probes)
        try:
            (weights,) = self._query(f"SELECT {exprs}")
        except pymysql.err.MySQLError:  # unknown charset/collation, no WEIGHT_STRING: never fold
            return False
        classes: dict[bytes, bytes] = {}
        for probe, weight in zip(probes, weights):
            if weight is None:
                return False
            folded = probe.lower()
            if classes.setdefault(bytes(weight), folded) != folded:
                return False  # two probes lower() keeps apart compare equal
        return True


def fk_groups(pairs: list[tuple[tuple[str, str], tuple[str, str]]]) -> dict[tuple[str, str], str]:
    """Union-find over (child, parent) table pairs -> table: id of its connected component.

    The id is the component's smallest 'schema.table', so it is stable across reloads.
    """
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(t: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(t, t)
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the root is always the smallest member
    return {t: "{}.{}".format(*find(t)) for t in parent}


def _table_info(schema: str, name: str, columns: tuple[ColumnInfo, ...], indexes: list[_Index],
                group: str | None, engine: Any, table_type: str) -> TableInfo:
    ordinal = {c.name: c.ordinal for c in columns}
    ordinal.update({c.name.lower(): c.ordinal for c in columns})
    primary = None
    uniques: list[tuple[str, tuple[int, ...]]] = []
    prefixes: list[tuple[str, tuple[int | None, ...]]] = []
    opaque: list[str] = []
    for ix in indexes:
        if ix.opaque or any(c not in ordinal and c.lower() not in ordinal for c in ix.columns):
            opaque.append(ix.name)
            continue
        ordinals = tuple(ordinal.get(c, ordinal.get(c.lower(), -1)) for c in ix.columns)
        if ix.name == "PRIMARY":
            primary = ordinals
        else:
            uniques.append((ix.name, ordinals))
        if any(p is not None for p in ix.sub_parts):
            prefixes.append((ix.name, tuple(ix.sub_parts)))
    # A MEMORY table's ordinary indexes are HASH too, but only long uniques on other
    # engines get a hidden column; keys.py accepts the count only if the types agree.
    hash_uniques = sum(1 for ix in indexes if ix.hashed and str(engine or "").upper() != "MEMORY")
    return TableInfo(schema, name, columns, primary, tuple(uniques), group,
                     str(engine) if engine is not None else None, tuple(prefixes), tuple(opaque),
                     hash_uniques, table_type.upper() == "SYSTEM VERSIONED")


def column_mismatch(tmap: Any, info: TableInfo) -> str | None:
    """Why a TABLE_MAP (binlog/rows.TableMap) does not fit the target's table, or None.

    The binlog's columns must be the target's, plus only the hidden ones MariaDB appends
    (implicit row_start/row_end of a system-versioned table, a BIGINT per long UNIQUE)."""
    from binreplay.binlog import column_types as T

    hidden = tuple(tmap.types[len(info.columns):])
    hashes = (T.T_LONGLONG,) * info.hash_uniques
    allowed = [hashes]
    if info.system_versioned:  # implicit row_start, row_end (declared ones are ordinary columns)
        allowed.append((T.T_TIMESTAMP2, T.T_TIMESTAMP2) + hashes)
    if tmap.column_count < len(info.columns) or hidden not in allowed:
        return f"the binlog has {tmap.column_count} columns, the target {len(info.columns)}"
    return None
