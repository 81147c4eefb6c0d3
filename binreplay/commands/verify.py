"""`binreplay verify`: does the target hold the same data as a reference server?

Table by table: the schema (tables on each side, their columns), then the rows, as checksums
over chunks of the primary key (or first NOT NULL unique key) walked on the reference. Both
servers compute the very same expression over the very same key range, so the result does not
depend on row format or storage (unlike CHECKSUM TABLE). A differing chunk is bisected down to
a small key range that the report names.

What is compared is content, byte for byte: 'a' and 'A' differ even in a _ci column, NULL and
'' differ, FLOAT is widened to DOUBLE (exact) and TIMESTAMPs are read in UTC. Compare quiescent
servers: rows written while verify runs show up as differences.
"""

from __future__ import annotations

import queue
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pymysql

from binreplay.server.sql import SYSTEM_SCHEMAS, quote_ident
from binreplay.errors import TargetError, UsageError, describe
from binreplay.server.connection import ServerConfig, connect

Connection = pymysql.connections.Connection
Key = tuple[Any, ...]

# Values hashed through MD5 first, so one row's concatenation stays far below max_allowed_packet.
_LONG_TYPES = frozenset({"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob",
                         "longblob", "json", "geometry", "point", "linestring", "polygon", "multipoint",
                         "multilinestring", "multipolygon", "geometrycollection"})
_CONTENT_TABLE_TYPES = frozenset({"BASE TABLE", "SYSTEM VERSIONED"})


@dataclass(frozen=True)
class VerifyOptions:
    target: ServerConfig
    reference: ServerConfig
    databases: tuple[str, ...] = ()      # empty: every user database on either server
    chunk_size: int = 10_000
    threads: int = 4
    progress_schema: str = "binreplay"
    narrow_to: int = 100                 # bisect a differing chunk until it holds at most this many rows
    max_ranges: int = 10                 # differing key ranges reported per table
    progress: bool = True                # tqdm bar on stderr (shown on a terminal only)


@dataclass
class KeyRange:
    """Rows whose key is > `after` and <= `upto` (None: unbounded) differ between the servers."""
    after: Key | None
    upto: Key | None
    reference_rows: int
    target_rows: int
    first: Key | None = None             # smallest key present in the range (either server)
    last: Key | None = None              # largest key present in the range (either server)


@dataclass
class TableResult:
    schema: str
    table: str
    key: list[str] = field(default_factory=list)
    reference_rows: int | None = None
    target_rows: int | None = None
    problems: list[str] = field(default_factory=list)
    ranges: list[KeyRange] = field(default_factory=list)
    more_ranges: bool = False            # the report stopped at max_ranges

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}" if self.table else self.schema

    @property
    def differs(self) -> bool:
        return bool(self.problems or self.ranges)


@dataclass
class VerifyReport:
    databases: list[str]
    tables: list[TableResult]
    elapsed_s: float = 0.0

    @property
    def differences(self) -> list[TableResult]:
        return [t for t in self.tables if t.differs]

    @property
    def rows(self) -> int:
        return sum(t.reference_rows or 0 for t in self.tables)


# ---- connections -------------------------------------------------------------

@dataclass
class _Side:
    """One server's connection, with its role for messages."""
    role: str            # "reference" or "target"
    cfg: ServerConfig
    conn: Connection

    def rows(self, sql: str, args: list | tuple | None = None) -> list[tuple]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        except pymysql.err.MySQLError as exc:
            raise TargetError(f"{self.role} {self.cfg.where}: {describe(exc)}") from None

    def close(self) -> None:
        try:
            self.conn.close()
        except pymysql.err.Error:
            pass


def _open(role: str, cfg: ServerConfig) -> _Side:
    conn = connect(cfg, role=role, multi_statements=False)
    side = _Side(role, cfg, conn)
    # UTC: a TIMESTAMP is the same instant whatever the servers' time zones are.
    side.rows("SET SESSION time_zone = '+00:00'")
    return side


@dataclass
class _Pair:
    ref: _Side
    tgt: _Side
    # Runs the target's half of each query while this thread runs the reference's: both servers work at once.
    helper: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="verify-tgt"))

    def both(self, sql: str, args: list) -> tuple[list[tuple], list[tuple]]:
        on_target = self.helper.submit(self.tgt.rows, sql, args)
        try:
            on_reference = self.ref.rows(sql, args)
        finally:
            on_target_rows = on_target.result()
        return on_reference, on_target_rows

    def close(self) -> None:
        self.helper.shutdown()
        self.ref.close()
        self.tgt.close()


@contextmanager
def _pairs(opts: VerifyOptions, count: int) -> Iterator[queue.Queue[_Pair]]:
    """`count` connection pairs (one per thread), all closed at the end."""
    ref_cfg, tgt_cfg = opts.reference.resolved(), opts.target.resolved()
    opened: list[_Pair] = []
    pool: queue.Queue[_Pair] = queue.Queue()
    try:
        for _ in range(count):
            pair = _Pair(_open("reference", ref_cfg), _open("target", tgt_cfg))
            opened.append(pair)
            pool.put(pair)
        yield pool
    finally:
        for pair in opened:
            pair.close()


# ---- schema ------------------------------------------------------------------

@dataclass
class _Table:
    kind: str                                  # information_schema TABLE_TYPE
    columns: list[tuple[str, str, str]] = field(default_factory=list)   # (name, DATA_TYPE, full definition)
    key: list[str] = field(default_factory=list)
    estimated_rows: int = 0


def _databases(side: _Side) -> set[str]:
    return {str(n) for (n,) in side.rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}


def _tables(side: _Side, databases: list[str]) -> dict[tuple[str, str], _Table]:
    if not databases:
        return {}
    marks = ",".join(["%s"] * len(databases))
    tables = {(str(s), str(t)): _Table(str(kind), estimated_rows=int(n or 0)) for s, t, kind, n in side.rows(
        f"SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA IN ({marks})", databases)}
    for s, t, name, data_type, column_type, nullable, collation in side.rows(
            f"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME "
            f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({marks}) "
            "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION", databases):
        if (str(s), str(t)) in tables:
            definition = f"{column_type}{'' if nullable == 'YES' else ' NOT NULL'}" + \
                (f" COLLATE {collation}" if collation else "")
            tables[str(s), str(t)].columns.append((str(name), str(data_type).lower(), definition))
    _pick_keys(side, databases, tables)
    return tables


def _pick_keys(side: _Side, databases: list[str], tables: dict[tuple[str, str], _Table]) -> None:
    """The primary key, else the first unique key whose columns are all NOT NULL (rows with a
    NULL key would fall outside every key range)."""
    marks = ",".join(["%s"] * len(databases))
    indexes: dict[tuple[str, str], dict[str, list[str]]] = {}
    nullable: set[tuple[str, str, str]] = set()
    for s, t, index, column, null in side.rows(
            f"SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE FROM information_schema.STATISTICS "
            f"WHERE TABLE_SCHEMA IN ({marks}) AND NON_UNIQUE = 0 ORDER BY TABLE_SCHEMA, TABLE_NAME, "
            "INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX", databases):
        indexes.setdefault((str(s), str(t)), {}).setdefault(str(index), []).append(str(column))
        if null == "YES":
            nullable.add((str(s), str(t), str(index)))
    for table, by_name in indexes.items():
        if table in tables:
            tables[table].key = next((cols for name, cols in by_name.items()
                                      if (*table, name) not in nullable), [])


# ---- checksums ---------------------------------------------------------------

# A row whose hash is NULL (its image exceeded max_allowed_packet) adds this instead, so it is
# counted rather than silently skipped; the hash sums stay below it up to 5e10 rows per range.
_UNHASHED = 10 ** 30


@dataclass(frozen=True)
class _Sum:
    """COUNT(*) and the sum of the first 64 bits of each row's MD5: additive, so the sum over
    the upper half of a range is the whole range's minus the lower half's."""
    rows: int
    hashes: int

    @property
    def unhashed(self) -> int:
        return self.hashes // _UNHASHED

    def __sub__(self, other: "_Sum") -> "_Sum":
        return _Sum(self.rows - other.rows, self.hashes - other.hashes)


def _column_image(name: str, data_type: str) -> str:
    """An unambiguous byte image of one column: length-prefixed bytes, or 'N' for NULL."""
    q = quote_ident(name)
    if data_type == "float":
        value = f"CAST(CAST({q} AS DOUBLE) AS BINARY)"   # FLOAT's text has 6 digits; DOUBLE's is exact
    elif data_type in _LONG_TYPES:
        value = f"MD5(CAST({q} AS BINARY))"
    else:
        value = f"CAST({q} AS BINARY)"                   # the column's own bytes: 'a' <> 'A' whatever the collation
    # (Not IFNULL: a CONCAT over max_allowed_packet is NULL too, and must not pass for a NULL value.)
    return f"IF({q} IS NULL, 'N', CONCAT(LENGTH({value}), ':', {value}))"


def _checksum_sql(schema: str, table: str, columns: list[tuple[str, str, str]], where: str) -> str:
    image = ", ".join(_column_image(name, data_type) for name, data_type, _ in columns)
    row_hash = f"CAST(CONV(LEFT(MD5(CONCAT({image})), 16), 16, 10) AS UNSIGNED)"
    return (f"SELECT COUNT(*), COALESCE(SUM(COALESCE({row_hash}, {_UNHASHED})), 0) "
            f"FROM {quote_ident(schema)}.{quote_ident(table)}{f' WHERE {where}' if where else ''}")


def _after(key: list[str], value: Key) -> tuple[str, list]:
    """`key > value`, lexicographically, in a form the range optimizer uses."""
    ors, args = [], []
    for i in range(len(key)):
        ands = [f"{quote_ident(c)} = %s" for c in key[:i]] + [f"{quote_ident(key[i])} > %s"]
        ors.append("(" + " AND ".join(ands) + ")")
        args += list(value[:i + 1])
    return "(" + " OR ".join(ors) + ")", args


def _range_where(key: list[str], after: Key | None, upto: Key | None) -> tuple[str, list]:
    parts, args = [], []
    if after is not None:
        sql, a = _after(key, after)
        parts.append(sql)
        args += a
    if upto is not None:
        sql, a = _after(key, upto)
        parts.append(f"NOT {sql}")
        args += a
    return " AND ".join(parts), args


class _TableCheck:
    """One table's comparison over one connection pair."""

    def __init__(self, pair: _Pair, opts: VerifyOptions, result: TableResult,
                 columns: list[tuple[str, str, str]]) -> None:
        self.pair, self.opts, self.result, self.columns = pair, opts, result, columns
        self.key = result.key
        self.table_sql = f"{quote_ident(result.schema)}.{quote_ident(result.table)}"
        self.key_sql = ", ".join(quote_ident(c) for c in self.key)

    def run(self) -> None:
        if not self.key:
            ref, tgt = self._sums(None, None)
            self._count(ref, tgt)
            if ref != tgt:
                what = "content differs" if ref.rows == tgt.rows else f"row count {ref.rows} vs {tgt.rows}"
                self.result.problems.append(f"{what} (no primary or NOT NULL unique key to narrow it down)")
            return
        after: Key | None = None
        while True:
            upto = self._nth_key(self.pair.ref, after, None, self.opts.chunk_size)
            ref, tgt = self._sums(after, upto)
            self._count(ref, tgt)
            if ref != tgt:
                self._narrow(after, upto, ref, tgt)
            if upto is None:
                break
            after = upto
        if self.result.reference_rows != self.result.target_rows:
            self.result.problems.insert(0, f"row count {self.result.reference_rows} vs {self.result.target_rows}")

    def _count(self, ref: _Sum, tgt: _Sum) -> None:
        r = self.result
        r.reference_rows = (r.reference_rows or 0) + ref.rows
        r.target_rows = (r.target_rows or 0) + tgt.rows
        for side, s in (("reference", ref), ("target", tgt)):
            if s.unhashed:
                r.problems.append(f"{s.unhashed} rows could not be hashed on the {side} (value too large)")

    def _sums(self, after: Key | None, upto: Key | None) -> tuple[_Sum, _Sum]:
        where, args = _range_where(self.key, after, upto)
        sql = _checksum_sql(self.result.schema, self.result.table, self.columns, where)
        ref, tgt = ((_Sum(*(int(v) for v in rows[0]))) for rows in self.pair.both(sql, args))
        return ref, tgt

    def _nth_key(self, side: _Side, after: Key | None, upto: Key | None, n: int) -> Key | None:
        """The n-th key after `after` (and at most `upto`) on one server; None if there are fewer rows."""
        where, args = _range_where(self.key, after, upto)
        rows = side.rows(f"SELECT {self.key_sql} FROM {self.table_sql}{f' WHERE {where}' if where else ''} "
                         f"ORDER BY {self.key_sql} LIMIT 1 OFFSET {n - 1}", args)
        return tuple(rows[0]) if rows else None

    def _narrow(self, after: Key | None, upto: Key | None, ref: _Sum, tgt: _Sum) -> None:
        """Bisect (after, upto] by rows of the fuller side until small enough, then record it."""
        if len(self.result.ranges) >= self.opts.max_ranges:
            self.result.more_ranges = True
            return
        rows = max(ref.rows, tgt.rows)
        middle = None
        if rows > self.opts.narrow_to:
            side = self.pair.ref if ref.rows >= tgt.rows else self.pair.tgt
            middle = self._nth_key(side, after, upto, rows // 2)
        if middle is None:
            self.result.ranges.append(self._described(after, upto, ref, tgt))
            return
        low_ref, low_tgt = self._sums(after, middle)
        for lo, hi, r, t in ((after, middle, low_ref, low_tgt), (middle, upto, ref - low_ref, tgt - low_tgt)):
            if r != t:
                self._narrow(lo, hi, r, t)

    def _described(self, after: Key | None, upto: Key | None, ref: _Sum, tgt: _Sum) -> KeyRange:
        where, args = _range_where(self.key, after, upto)
        where = f" WHERE {where}" if where else ""
        ends: list[Key] = []
        for side in (self.pair.ref, self.pair.tgt):
            for order in ("", " DESC"):
                order_sql = ", ".join(f"{quote_ident(c)}{order}" for c in self.key)
                rows = side.rows(f"SELECT {self.key_sql} FROM {self.table_sql}{where} ORDER BY {order_sql} LIMIT 1",
                                 args)
                ends += [tuple(rows[0])] if rows else []
        return KeyRange(after, upto, ref.rows, tgt.rows, *_extremes(ends))


def _extremes(keys: list[Key]) -> tuple[Key | None, Key | None]:
    """Smallest and largest key, for the report (Python order; the range bounds are exact anyway)."""
    if not keys:
        return None, None
    try:
        return min(keys), max(keys)
    except TypeError:
        return keys[0], keys[-1]


# ---- the whole comparison ----------------------------------------------------

def verify(opts: VerifyOptions) -> VerifyReport:
    """Compare every table; raise TargetError for an unreachable server or a failing query."""
    if opts.chunk_size < 1 or opts.threads < 1:
        raise UsageError("--chunk-size and --threads must be at least 1")
    started = time.monotonic()
    with _pairs(opts, opts.threads) as pool:
        pair = pool.get()
        databases = _selected_databases(pair, opts)
        present = {"reference": _databases(pair.ref), "target": _databases(pair.tgt)}
        results: list[TableResult] = []
        for db in databases:
            for role, other in (("reference", "target"), ("target", "reference")):
                if db not in present[role]:
                    results.append(TableResult(db, "", problems=[f"database missing on the {role} "
                                                                 f"(present on the {other})"]))
        both = [db for db in databases if db in present["reference"] and db in present["target"]]
        ref_tables, tgt_tables = _tables(pair.ref, both), _tables(pair.tgt, both)
        pool.put(pair)
        work = _schema_results(ref_tables, tgt_tables, results)
        _compare_contents(pool, opts, work)
    results.sort(key=lambda r: (r.schema, r.table))
    return VerifyReport(databases, results, time.monotonic() - started)


def _selected_databases(pair: _Pair, opts: VerifyOptions) -> list[str]:
    if opts.databases:
        names = sorted(set(opts.databases))
        on_neither = [db for db in names if db not in _databases(pair.ref) | _databases(pair.tgt)]
        if on_neither:
            raise UsageError(f"--database {on_neither[0]}: no such database on either server")
        return names
    skip = SYSTEM_SCHEMAS | {opts.progress_schema}
    return sorted((_databases(pair.ref) | _databases(pair.tgt)) - skip)


def _schema_results(ref: dict[tuple[str, str], _Table], tgt: dict[tuple[str, str], _Table],
                    results: list[TableResult]) -> list[tuple[TableResult, list, int]]:
    """Record missing tables and differing columns; return the tables whose rows to compare."""
    work = []
    for name in sorted(ref.keys() | tgt.keys()):
        result = TableResult(*name)
        results.append(result)
        a, b = ref.get(name), tgt.get(name)
        if a is None or b is None:
            result.problems.append("missing on the target" if b is None else "missing on the reference "
                                                                               "(extra on the target)")
            continue
        if a.kind != b.kind:
            result.problems.append(f"a {a.kind} on the reference but a {b.kind} on the target")
            continue
        if a.kind not in _CONTENT_TABLE_TYPES:
            continue
        if [c[0] for c in a.columns] != [c[0] for c in b.columns]:
            result.problems.append(f"columns differ: reference ({', '.join(c[0] for c in a.columns)}) vs "
                                   f"target ({', '.join(c[0] for c in b.columns)})")
            continue
        for (col, _, def_a), (_, _, def_b) in zip(a.columns, b.columns):
            if def_a != def_b:
                result.problems.append(f"column {col}: {def_a} on the reference, {def_b} on the target")
        result.key = a.key
        work.append((result, a.columns, a.estimated_rows))
    work.sort(key=lambda w: -w[2])     # largest first: the threads finish together
    return work


def _compare_contents(pool: queue.Queue[_Pair], opts: VerifyOptions,
                      work: list[tuple[TableResult, list, int]]) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(work), unit="table", desc="verify", file=sys.stderr, dynamic_ncols=True,
               disable=None if opts.progress else True, leave=False)

    def check(item: tuple[TableResult, list, int]) -> None:
        result, columns, _ = item
        pair = pool.get()
        try:
            _TableCheck(pair, opts, result, columns).run()
        finally:
            pool.put(pair)
            bar.update(1)

    executor = ThreadPoolExecutor(max_workers=opts.threads, thread_name_prefix="verify")
    try:
        for future in [executor.submit(check, item) for item in work]:
            future.result()
    finally:
        # After an error or Ctrl-C, tables not started yet are not started.
        executor.shutdown(cancel_futures=True)
        bar.close()


# ---- output --------------------------------------------------------------------

def _show_key(key: Key | None) -> str:
    if key is None:
        return "-"
    shown = [f"0x{v.hex()}" if isinstance(v, bytes) else repr(v) if isinstance(v, str) else str(v) for v in key]
    return shown[0] if len(shown) == 1 else "(" + ", ".join(shown) + ")"


def describe_range(columns: list[str], r: KeyRange) -> str:
    name = columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"
    low = f"> {_show_key(r.after)}" if r.after is not None else ""
    high = f"<= {_show_key(r.upto)}" if r.upto is not None else ""
    bounds = " and ".join(b for b in (low, high) if b) or "any value"
    present = f", keys {_show_key(r.first)} .. {_show_key(r.last)}" if r.first is not None else ""
    return f"{name} {bounds}: {r.reference_rows} rows on the reference, {r.target_rows} on the target{present}"


def human_report(report: VerifyReport) -> str:
    lines = []
    for t in report.differences:
        lines.append(f"{t.name}: DIFFERENT")
        lines += [f"    {p}" for p in t.problems]
        lines += [f"    rows differ where {describe_range(t.key, r)}" for r in t.ranges]
        if t.more_ranges:
            lines.append(f"    ... more differing ranges (only the first {len(t.ranges)} are listed)")
    return "\n".join(lines)


def verdict(report: VerifyReport) -> str:
    tables = sum(1 for t in report.tables if t.table)
    diffs = report.differences
    if not diffs:
        return (f"verify: the target equals the reference: {tables} tables in {len(report.databases)} "
                f"databases, {report.rows} rows, {report.elapsed_s:.1f}s")
    names = ", ".join(t.name for t in diffs[:5]) + (", ..." if len(diffs) > 5 else "")
    return f"verify: the target differs from the reference in {len(diffs)} of {tables} tables: {names}"


def _jsonable(key: Key | None) -> list | None:
    if key is None:
        return None
    return [v if isinstance(v, (int, float, str)) or v is None else
            f"0x{v.hex()}" if isinstance(v, bytes) else str(v) for v in key]


def json_report(report: VerifyReport) -> dict:
    return {
        "equal": not report.differences,
        "databases": report.databases,
        "tables": len([t for t in report.tables if t.table]),
        "rows": report.rows,
        "elapsed_s": round(report.elapsed_s, 3),
        "differences": [{
            "database": t.schema, "table": t.table or None, "key": t.key,
            "reference_rows": t.reference_rows, "target_rows": t.target_rows, "problems": t.problems,
            "ranges": [{"after": _jsonable(r.after), "upto": _jsonable(r.upto), "first": _jsonable(r.first),
                        "last": _jsonable(r.last), "reference_rows": r.reference_rows, "target_rows": r.target_rows}
                       for r in t.ranges],
            "more_ranges": t.more_ranges,
        } for t in report.differences],
    }
