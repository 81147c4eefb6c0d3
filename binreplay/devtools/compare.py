"""Compare the database content of two servers, exactly.

Used by tests, the demo and benchmarks to prove that a replay reproduced the
source. Values are compared as the bytes the server sends (text protocol, no
character set conversion, no Python decoding), so 'a' vs 'A', trailing
spaces, NULL vs '' and single-byte blob changes are all differences, while
DECIMAL(5,2) 1.1 and 1.10 are the same stored value and compare equal.

Compare quiescent servers: each table is read with its own statement, so a
concurrent workload shows up as (real) differences.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.connections
import pymysql.cursors

from binreplay.server import catalog
from binreplay.server.sql import SYSTEM_SCHEMAS, quote_ident

Connection = pymysql.connections.Connection
Row = tuple[bytes | None, ...]

CHUNK_ROWS = 5000

# Types whose equal sort keys imply equal bytes; everything else is ordered by
# its bytes so rows equal under a _ci or PAD SPACE collation still sort stably.
_ORDER_AS_IS = frozenset({
    "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double",
    "bit", "year", "date", "datetime", "timestamp", "time",
})
# SHOW CREATE TRIGGER's creation time differs between a source and any copy.
_VOLATILE_SHOW_CREATE_COLUMNS = frozenset({"Created"})
# How diff messages show values: numbers unquoted, binary types in hex.
_NUMERIC = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "double",
                      "float", "year"})
_BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit",
                     "geometry", "point", "linestring", "polygon", "multipoint",
                     "multilinestring", "multipolygon", "geometrycollection"})
_AUTO_INCREMENT_OPTION = re.compile(r"\s+AUTO_INCREMENT=\d+\b")


@dataclass(frozen=True)
class TableDiff:
    schema: str
    table: str   # table, view, trigger or routine name; "" for schema-level diffs
    reason: str

    def __str__(self) -> str:
        where = f"{self.schema}.{self.table}" if self.table else self.schema
        return f"{where}: {self.reason}"


# ---- raw session ----------------------------------------------------------

@contextmanager
def _raw_session(conn: Connection) -> Iterator[Connection]:
    """Make conn return undecoded bytes, unconverted charsets and UTC timestamps.

    Swaps pymysql's decoders and the session variables for the duration of the
    comparison and restores them afterwards, so callers can pass any connection.
    """
    saved_decoding = conn.decoders, conn.use_unicode
    conn.decoders, conn.use_unicode = {}, False
    try:
        cs_results, time_zone = _query(
            conn, "SELECT @@session.character_set_results, @@session.time_zone")[0]
        # NULL: send values in the column's own charset. UTC: TIMESTAMPs compare
        # the stored instant even if the servers' time zones differ.
        _query(conn, "SET SESSION character_set_results = NULL, time_zone = '+00:00'")
        try:
            yield conn
        finally:
            _query(conn, "SET SESSION character_set_results = %s, time_zone = %s",
                   (cs_results, time_zone))
    finally:
        conn.decoders, conn.use_unicode = saved_decoding


def _text(value: Any) -> Any:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _query(conn: Connection, sql: str, args: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    """Run a metadata query in a raw session; bytes become str."""
    # An explicit tuple cursor: the caller's default may be a DictCursor.
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute(sql, args)
        return [tuple(_text(v) for v in row) for row in cur.fetchall()]


# ---- schemas --------------------------------------------------------------

def compare_servers(
    reference_conn: Connection, target_conn: Connection, *,
    schemas: list[str] | None = None, exclude: tuple[str, ...] = ("binreplay",),
    compare_definitions: bool = True, chunk_rows: int = CHUNK_ROWS,
) -> list[TableDiff]:
    """All differences between the two servers' user schemas ([] when identical)."""
    with _raw_session(reference_conn) as ref, _raw_session(target_conn) as tgt:
        ref_schemas, tgt_schemas = catalog.schema_names(ref), catalog.schema_names(tgt)
        if schemas is None:
            skip = SYSTEM_SCHEMAS | set(exclude)
            schemas = sorted((ref_schemas | tgt_schemas) - skip)
        diffs: list[TableDiff] = []
        for schema in schemas:
            in_ref, in_tgt = schema in ref_schemas, schema in tgt_schemas
            if in_ref and in_tgt:
                diffs += _SchemaComparison(ref, tgt, schema, compare_definitions, chunk_rows).run()
            elif in_ref:
                diffs.append(TableDiff(schema, "", "schema missing on target"))
            elif in_tgt:
                diffs.append(TableDiff(schema, "", "schema missing on reference (extra on target)"))
            else:
                diffs.append(TableDiff(schema, "", "schema missing on both servers"))
        return diffs


# ---- one schema -----------------------------------------------------------

@dataclass
class _Columns:
    names: list[str]
    types: list[str]    # information_schema DATA_TYPE, lower case
    primary_key: list[str]


def _schema_objects(conn: Connection, schema: str) -> dict[str, str]:
    """Table name -> TABLE_TYPE (BASE TABLE, VIEW, SEQUENCE, SYSTEM VERSIONED)."""
    return {t.name: t.kind for t in catalog.tables(conn, [schema])}


def _schema_columns(conn: Connection, schema: str) -> dict[str, _Columns]:
    """Columns (all, including INVISIBLE ones) and primary key of every table, in one go."""
    result: dict[str, _Columns] = {}
    for c in catalog.columns(conn, [schema]):
        cols = result.setdefault(c.table, _Columns([], [], []))
        cols.names.append(c.name)
        cols.types.append(c.data_type)
    for key in catalog.unique_keys(conn, [schema]):
        if key.name == "PRIMARY" and key.table in result:
            result[key.table].primary_key.extend(key.columns)
    return result


def _show_create(conn: Connection, kind: str, schema: str, name: str) -> dict[str, Any]:
    """SHOW CREATE <kind> output by column, minus the name and creation time.

    A failure (e.g. a view over a dropped table) becomes part of the definition.
    """
    target = quote_ident(schema) + (f".{quote_ident(name)}" if name else "")
    try:
        with conn.cursor(pymysql.cursors.Cursor) as cur:
            cur.execute(f"SHOW CREATE {kind} {target}")
            columns = [d[0] for d in cur.description]
            row = cur.fetchone()
    except pymysql.Error as exc:
        return {"error": str(exc)}
    if row is None:
        return {}
    return {col: _text(value) for col, value in zip(columns[1:], row[1:])
            if col not in _VOLATILE_SHOW_CREATE_COLUMNS}


def normalized_table_ddl(ddl: str) -> str:
    """SHOW CREATE TABLE text without the AUTO_INCREMENT=N table option.

    The counter is not content (it differs after rollbacks, restarts, dumps).
    """
    cut = ddl.rfind("\n)")
    if cut < 0:
        return _AUTO_INCREMENT_OPTION.sub("", ddl)
    return ddl[:cut] + _AUTO_INCREMENT_OPTION.sub("", ddl[cut:])


def _describe_definition_diff(ref: dict[str, Any], tgt: dict[str, Any]) -> str:
    """The first differing SHOW CREATE column, down to its first differing line."""
    for col in [*ref, *(c for c in tgt if c not in ref)]:
        a, b = ref.get(col), tgt.get(col)
        if a == b:
            continue
        if isinstance(a, str) and isinstance(b, str):
            lines = difflib.unified_diff(a.splitlines(), b.splitlines(), n=0, lineterm="")
            changed = [ln for ln in lines if ln[:1] in "-+" and ln[:3] not in ("---", "+++")]
            return f"{col}: " + " / ".join(ln[:120] for ln in changed[:4])
        return f"{col}: {a!r} vs {b!r}"
    return ""


class _SchemaComparison:
    def __init__(self, ref: Connection, tgt: Connection, schema: str,
                 compare_definitions: bool, chunk_rows: int) -> None:
        self.ref, self.tgt, self.schema = ref, tgt, schema
        self.compare_definitions = compare_definitions
        self.chunk_rows = chunk_rows
        self.diffs: list[TableDiff] = []

    def run(self) -> list[TableDiff]:
        if self.compare_definitions:
            self._compare_create("DATABASE", "")
        ref_objs = _schema_objects(self.ref, self.schema)
        tgt_objs = _schema_objects(self.tgt, self.schema)
        ref_cols = _schema_columns(self.ref, self.schema)
        tgt_cols = _schema_columns(self.tgt, self.schema)
        for name in sorted(ref_objs.keys() | tgt_objs.keys()):
            if name not in tgt_objs:
                self._add(name, "missing on target")
            elif name not in ref_objs:
                self._add(name, "missing on reference (extra on target)")
            elif ref_objs[name] != tgt_objs[name]:
                self._add(name, f"is a {ref_objs[name]} on reference but a {tgt_objs[name]} on target")
            elif ref_objs[name] == "VIEW":
                if self.compare_definitions:
                    self._compare_create("VIEW", name)
            else:
                if self.compare_definitions:
                    self._compare_create("TABLE", name)
                empty = _Columns([], [], [])
                self._compare_content(name, ref_cols.get(name, empty), tgt_cols.get(name, empty))
        if self.compare_definitions:
            self._compare_routines()
        return self.diffs

    def _add(self, name: str, reason: str) -> None:
        self.diffs.append(TableDiff(self.schema, name, reason))

    # -- definitions --

    def _compare_create(self, kind: str, name: str) -> None:
        ref = _show_create(self.ref, kind, self.schema, name)
        tgt = _show_create(self.tgt, kind, self.schema, name)
        if kind == "TABLE":
            ref = {k: normalized_table_ddl(v) for k, v in ref.items()}
            tgt = {k: normalized_table_ddl(v) for k, v in tgt.items()}
        if ref != tgt:
            what = "definition" if kind == "TABLE" else f"{kind.lower()} definition"
            self._add(name, f"{what} differs ({_describe_definition_diff(ref, tgt)})")

    def _compare_routines(self) -> None:
        """Triggers, procedures, functions and events, by SHOW CREATE."""
        for kind in catalog.STORED_OBJECT_KINDS:
            ref = catalog.stored_object_names(self.ref, self.schema, kind)
            tgt = catalog.stored_object_names(self.tgt, self.schema, kind)
            for name in sorted(ref | tgt):
                label = f"{kind.lower()} {name}"
                if name not in tgt:
                    self._add(name, f"{label} missing on target")
                elif name not in ref:
                    self._add(name, f"{label} missing on reference (extra on target)")
                else:
                    self._compare_create(kind, name)

    # -- content --

    def _compare_content(self, table: str, ref_cols: _Columns, tgt_cols: _Columns) -> None:
        if ref_cols.names != tgt_cols.names:
            self._add(table, f"columns differ: {ref_cols.names} vs {tgt_cols.names}")
            return
        ref_sql = _select_sql(self.schema, table, ref_cols)
        tgt_sql = _select_sql(self.schema, table, tgt_cols)
        reason = _compare_streams(self.ref, ref_sql, self.tgt, tgt_sql,
                                  _RowFormat.of(ref_cols), self.chunk_rows)
        if reason:
            self._add(table, reason)


def _select_expr(name: str, data_type: str) -> str:
    # FLOAT is sent as 6 significant digits, which hides real differences;
    # widening to DOUBLE is exact and DOUBLE text is shortest round-trip.
    q = quote_ident(name)
    return f"CAST({q} AS DOUBLE)" if data_type == "float" else q


def _order_expr(name: str, data_type: str) -> str:
    q = quote_ident(name)
    return q if data_type in _ORDER_AS_IS else f"CAST({q} AS BINARY)"


def _select_sql(schema: str, table: str, cols: _Columns) -> str:
    select = ", ".join(_select_expr(n, t) for n, t in zip(cols.names, cols.types))
    if cols.primary_key:
        order = ", ".join(quote_ident(n) for n in cols.primary_key)
    else:
        order = ", ".join(_order_expr(n, t) for n, t in zip(cols.names, cols.types))
    return f"SELECT {select} FROM {quote_ident(schema)}.{quote_ident(table)} ORDER BY {order}"


@dataclass
class _RowFormat:
    """How to name and show a table's rows in diff messages."""
    names: list[str]
    types: list[str]
    key_idx: list[int]   # primary key positions; all columns without one

    @classmethod
    def of(cls, cols: _Columns) -> _RowFormat:
        key = cols.primary_key or cols.names
        return cls(cols.names, cols.types, [cols.names.index(n) for n in key])

    def key(self, row: Row) -> str:
        return "(" + ", ".join(f"{self.names[j]}={self.value(row, j)}" for j in self.key_idx) + ")"

    def value(self, row: Row, j: int, limit: int = 60) -> str:
        raw = row[j]
        if raw is None:
            return "NULL"
        if self.types[j] in _NUMERIC:
            return raw.decode("ascii", "replace")
        text = "0x" + raw.hex() if self.types[j] in _BINARY else repr(raw.decode("utf-8", "backslashreplace"))
        return text if len(text) <= limit else f"{text[:limit]}...({len(raw)} bytes)"


# ---- streaming row comparison ----------------------------------------------

def _compare_streams(ref: Connection, ref_sql: str, tgt: Connection, tgt_sql: str,
                     fmt: _RowFormat, chunk_rows: int) -> str | None:
    """Stream both ordered result sets in lockstep; describe the first difference.

    Keeps reading to the end after a difference so the row counts are exact.
    """
    first: str | None = None
    n_ref = n_tgt = 0
    with ref.cursor(pymysql.cursors.SSCursor) as rcur, tgt.cursor(pymysql.cursors.SSCursor) as tcur:
        rcur.execute(ref_sql)
        tcur.execute(tgt_sql)
        while True:
            a: list[Row] = list(rcur.fetchmany(chunk_rows))
            b: list[Row] = list(tcur.fetchmany(chunk_rows))
            if not a and not b:
                break
            if first is None and a != b:
                first = _describe_first_difference(a, b, n_ref, fmt)
            n_ref += len(a)
            n_tgt += len(b)
    if first is None:
        return None
    if n_ref != n_tgt:
        return f"row count {n_ref} vs {n_tgt}; first difference: {first}"
    return f"content differs (first differing {first})"


def _describe_first_difference(a: list[Row], b: list[Row], offset: int, fmt: _RowFormat) -> str:
    # Chunks are equal up to the shorter one's end when only the counts differ.
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    row_no = offset + i + 1
    if i >= len(b):
        return f"row #{row_no} key {fmt.key(a[i])} only on reference"
    if i >= len(a):
        return f"row #{row_no} key {fmt.key(b[i])} only on target"
    ka, kb = fmt.key(a[i]), fmt.key(b[i])
    if ka != kb:
        return f"row #{row_no}: reference key {ka} vs target key {kb}"
    cols = [j for j, (x, y) in enumerate(zip(a[i], b[i])) if x != y]
    detail = "; ".join(f"{fmt.names[j]}: {fmt.value(a[i], j)} vs {fmt.value(b[i], j)}"
                       for j in cols[:3])
    return f"key {ka}: {detail}"

