"""One table's rows compared: checksums over chunks of its key, a differing chunk bisected to a key range."""

from __future__ import annotations

from dataclasses import dataclass

from binreplay.commands.verify.catalog import Column
from binreplay.commands.verify.connections import Pair, Side
from binreplay.commands.verify.results import Key, KeyRange, TableResult, VerifyOptions
from binreplay.server.sql import quote_ident

# Values hashed through MD5 first, so one row's concatenation stays far below max_allowed_packet.
_LONG_TYPES = frozenset({"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob",
                         "longblob", "json", "geometry", "point", "linestring", "polygon", "multipoint",
                         "multilinestring", "multipolygon", "geometrycollection"})

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

    def __sub__(self, other: _Sum) -> _Sum:
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


def _checksum_sql(schema: str, table: str, columns: list[Column], where: str) -> str:
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


class TableCheck:
    """One table's comparison over one connection pair."""

    def __init__(self, pair: Pair, opts: VerifyOptions, result: TableResult, columns: list[Column]) -> None:
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

    def _nth_key(self, side: Side, after: Key | None, upto: Key | None, n: int) -> Key | None:
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
