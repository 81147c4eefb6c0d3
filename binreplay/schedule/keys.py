"""Conflict keys of a row-based transaction, for the parallel scheduler.

Two transactions may run concurrently only if their key sets do not conflict:
an exclusive key conflicts with the same key in any mode, a shared key only
with the same key held exclusively.

Keys (mode "row"):
  ("grp", group)                          exclusive: a table linked to others by foreign keys
                                          (cascades change rows the binlog does not show)
  ("tbl", schema, table)                  shared when rows are keyed; exclusive when the table
                                          cannot be keyed (no PK/unique, unknown, unparsable)
  ("idx", schema, table, index)           shared next to each row key; exclusive when an image
                                          lacks the index's value (MINIMAL image) or the value
                                          cannot be normalized safely
  ("row", schema, table, index, values)   exclusive: one primary/unique key value

Key values compare like the server compares them, or coarser (coarser only
costs parallelism; finer would let two conflicting transactions overlap):
integers by value, DECIMAL by value, FLOAT/DOUBLE by value with -0 = 0, binary
strings by bytes (BINARY without its \\0 padding), _bin collations by bytes
without trailing spaces, other collations only for pure-ASCII values (lower-cased,
control characters and trailing spaces dropped; non-ASCII -> index-wide key) and
only if the target's WEIGHT_STRING shows the collation treats printable ASCII that
way (utf8mb4_roman_ci has I = J, big5_chinese_ci 'E' = '`' ...: never folded),
everything else (temporal, ENUM, SET, BIT, ...) by its exact row-format bytes.
Prefix unique indexes key on the prefix (characters for text, bytes for binary);
a non-ASCII prefix in a multi-byte charset other than UTF-8/UTF-16/UTF-32 cannot be
cut at a character boundary here and takes the index-wide key.
A column absent from an UPDATE's after image (MINIMAL/NOBLOB) was not changed, so
its before-image value stands in for it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import partial
from operator import itemgetter
from typing import AbstractSet, Callable

from binreplay.binlog import constants as C
from binreplay.binlog import rows as R
from binreplay.binlog.events import decode_decimal
from binreplay.binlog.header import body_of, post_header_len
from binreplay.errors import BadInputError
from binreplay.model import FormatDescription, TableMapInfo, Transaction
from binreplay.server.tables import ColumnInfo, SchemaCache, TableInfo, column_mismatch

Key = tuple
KeySet = dict[Key, bool]  # key -> exclusive?

MODES = ("row", "table")

UNSAFE = object()
"""A normalizer's answer when it cannot reproduce the collation's equality for a value."""
ABSENT = R.ABSENT

Normalizer = Callable[[bytes], object]


class _Unkeyable(Exception):
    """The table can only be keyed as a whole."""


# A transaction that changes this many row events' worth of one table (about 8 KiB each)
# takes the table's exclusive key instead of one key per row: coarser, so still safe, and
# bulk transactions would otherwise spend more time in key extraction than the target
# spends applying them, for parallelism they rarely have.
BULK_ROWS_EVENTS = 16


def transaction_keys(trx: Transaction, schema: SchemaCache, mode: str = "row") -> KeySet:
    """The conflict keys of a transaction: key -> exclusive. Empty without row events."""
    if mode not in MODES:
        raise ValueError(f"unknown dependency mode {mode!r}")
    keys: KeySet = {}
    plans: dict[int, _TablePlan | None] = {}   # table id -> plan; None: keyed as a whole already
    fde = trx.fde
    has_rows = False
    rows_per_table: dict[int, int] = {}
    has_crc = fde.has_crc32
    for i, span in enumerate(trx.spans):
        t = span[0]
        if t == C.TABLE_MAP_EVENT:
            table_id, plan = _map_table(body_of(trx.raw(span), has_crc), trx.infos.get(i), fde, schema, mode, keys)
            plans[table_id] = plan
        elif t in C.ROWS_EVENTS:
            has_rows = True
            body = body_of(trx.raw(span), has_crc)
            phl = post_header_len(fde, t)
            table_id = R.rows_table_id(body, phl)
            seen = rows_per_table[table_id] = rows_per_table.get(table_id, 0) + 1
            plan = plans.get(table_id)
            if seen == BULK_ROWS_EVENTS and plan is not None:
                keys[plan.table_key] = True
                plans[table_id] = None
                continue
            _rows_keys(t, body, phl, table_id, span[1], plans, keys)
    return keys if has_rows else {}


# --- per event -------------------------------------------------------------------

def _map_table(body: bytes, names: object, fde: FormatDescription, schema: SchemaCache, mode: str,
               keys: KeySet) -> tuple[int, _TablePlan | None]:
    phl = post_header_len(fde, C.TABLE_MAP_EVENT)
    if not isinstance(names, TableMapInfo):
        names = R.table_map_names(body, phl)[0]
    info = schema.table(names.schema, names.table)
    if info is not None and info.fk_group:
        keys[("grp", info.fk_group)] = True   # the group stands for the table: no row keys
        return names.table_id, None
    table_key = ("tbl", info.schema, info.name) if info is not None else ("tbl", names.schema, names.table)
    if info is None or mode == "table":
        keys[table_key] = True
        return names.table_id, None
    try:
        plan = _cached_plan(body, phl, info, schema)
    except (_Unkeyable, R.RowFormatError):
        keys[table_key] = True
        return names.table_id, None
    keys.setdefault(table_key, False)
    return names.table_id, plan


def _rows_keys(type_code: int, body: bytes, phl: int, table_id: int, position: int,
               plans: dict[int, _TablePlan | None], keys: KeySet) -> None:
    if table_id not in plans:
        raise BadInputError(f"{C.event_name(type_code)} event at position {position} refers to table id "
                            f"{table_id}, which no TABLE_MAP event of its transaction maps")
    plan = plans[table_id]
    if plan is None:
        return
    try:
        rows = R.parse_rows_event(type_code, body, phl)
        images = plan.walker.images(rows, plan.wanted)
    except R.RowFormatError:
        keys[plan.table_key] = True
        plans[table_id] = None
        return
    if rows.kind == R.UPDATE:
        _update_keys(plan, images, rows.present, rows.present_after or 0, keys)
    else:
        for image in images:
            plan.image_keys(image, keys)


def _update_keys(plan: _TablePlan, images: list[tuple], present: int, present_after: int, keys: KeySet) -> None:
    # A column missing from the after image (MINIMAL/NOBLOB) was not changed by the
    # update: it still has its before-image value, which we may use for the key.
    fill = any(not present_after >> c & 1 and present >> c & 1 for c in plan.wanted)
    for i in range(0, len(images), 2):
        before, after = images[i], images[i + 1]
        plan.image_keys(before, keys)
        if fill:
            after = tuple(b if a is R.ABSENT else a for a, b in zip(after, before))
        if after != before:
            plan.image_keys(after, keys)


# --- per table -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _IndexPlan:
    name: str
    slots: tuple[int, ...]                      # positions in the walker's value tuples
    normalizers: tuple[Normalizer | None, ...]  # None: the raw bytes are the key value
    row_prefix: tuple                           # ("row", schema, table, index)
    idx_key: tuple                              # ("idx", schema, table, index)


class _TablePlan:
    """Everything needed to key one table's row images, built once per TABLE_MAP layout."""

    __slots__ = ("table_key", "walker", "wanted", "indexes", "_single", "_multi")

    def __init__(self, table_key: tuple, walker: R.RowWalker, wanted: tuple[int, ...],
                 indexes: tuple[_IndexPlan, ...]) -> None:
        self.table_key = table_key
        self.walker = walker
        self.wanted = wanted          # columns any index needs, in row order
        self.indexes = indexes
        # One-column indexes (most of them) take a path free of per-image list building.
        self._single = tuple((ix.slots[0], ix.normalizers[0], ix.row_prefix, ix.idx_key)
                             for ix in indexes if len(ix.slots) == 1)
        self._multi = tuple((itemgetter(*ix.slots), ix.normalizers, ix.row_prefix, ix.idx_key)
                            for ix in indexes if len(ix.slots) > 1)

    def image_keys(self, image: tuple, keys: KeySet) -> None:
        """Add the keys of one row image."""
        named = False
        for slot, normalize, row_prefix, idx_key in self._single:
            value = image[slot]
            if value is None:
                continue  # NULL never conflicts in a unique index (PRIMARY has no NULLs)
            named = True
            if value is not ABSENT:
                if normalize is not None:
                    value = normalize(value)
                if value is not UNSAFE:
                    keys[(*row_prefix, (value,))] = True
                    if idx_key not in keys:
                        keys[idx_key] = False
                    continue
            keys[idx_key] = True
        for getter, normalizers, row_prefix, idx_key in self._multi:
            values = _index_values(getter(image), normalizers)
            if values is None:
                continue
            named = True
            if values is UNSAFE:
                keys[idx_key] = True
            else:
                keys[(*row_prefix, values)] = True
                if idx_key not in keys:
                    keys[idx_key] = False
        if not named:
            # Every unique index is NULL here (no primary key): nothing names this row,
            # so only the whole table can stand for it.
            keys[self.table_key] = True


def _index_values(raw: tuple, normalizers: tuple[Normalizer | None, ...]) -> tuple | object | None:
    """A multi-column index's key value; None if a part is NULL, UNSAFE if one is unknown."""
    if None in raw:
        return None
    if ABSENT in raw:
        return UNSAFE
    values = tuple([v if n is None else n(v) for v, n in zip(raw, normalizers)])
    return UNSAFE if UNSAFE in values else values


def _cached_plan(body: bytes, post_header_len: int, info: TableInfo, schema: SchemaCache) -> _TablePlan:
    """Plans are cached per TABLE_MAP content (the same bytes for every statement on the table)."""
    memo_key = ("keys.plan", body[6:])  # all but the table id: ids change, layouts rarely
    cached = schema.derived.get(memo_key)
    if cached is None:
        try:
            cached = _plan(R.parse_table_map(body, post_header_len), info, schema)
        except (_Unkeyable, R.RowFormatError) as exc:
            cached = str(exc)  # remembered as a reason: re-raising one instance grows its traceback
        schema.derived[memo_key] = cached
    if isinstance(cached, str):
        raise _Unkeyable(cached)
    return cached


def _plan(tmap: R.TableMap, info: TableInfo, schema: SchemaCache) -> _TablePlan:
    columns = info.columns
    _check_column_count(tmap, info)
    if info.opaque_uniques:
        raise _Unkeyable("a unique index over an expression")
    index_defs = ([("PRIMARY", info.primary)] if info.primary else []) + list(info.uniques)
    if not index_defs:
        raise _Unkeyable("no primary key and no unique index")
    wanted = tuple(sorted({o for _, ordinals in index_defs for o in ordinals}))
    slot = {o: i for i, o in enumerate(wanted)}
    indexes = []
    for name, ordinals in index_defs:
        prefixes = info.prefix_lengths(name) or (None,) * len(ordinals)
        normalizers = tuple(_normalizer(columns[o], tmap.types[o], tmap.metadata[o], p, schema)
                            for o, p in zip(ordinals, prefixes))
        indexes.append(_IndexPlan(name, tuple(slot[o] for o in ordinals), normalizers,
                                  ("row", info.schema, info.name, name), ("idx", info.schema, info.name, name)))
    fsp = tuple(c.fsp for c in columns) + (0,) * (tmap.column_count - len(columns))
    return _TablePlan(("tbl", info.schema, info.name), R.RowWalker(tmap, fsp), wanted, tuple(indexes))


def _check_column_count(tmap: R.TableMap, info: TableInfo) -> None:
    problem = column_mismatch(tmap, info)
    if problem:
        raise _Unkeyable(problem)


# --- value normalization -------------------------------------------------------------

_INT_TYPES = {"tinyint": R.T_TINY, "smallint": R.T_SHORT, "mediumint": R.T_INT24, "int": R.T_LONG,
              "integer": R.T_LONG, "bigint": R.T_LONGLONG}
_VARCHAR_TYPES = frozenset({R.T_VARCHAR, R.T_VAR_STRING, R.T_VARCHAR_COMPRESSED})
_BLOB_TYPES = frozenset({R.T_TINY_BLOB, R.T_BLOB, R.T_MEDIUM_BLOB, R.T_LONG_BLOB, R.T_BLOB_COMPRESSED})
_TEXT_LIKE = {"char": {R.T_STRING}, "varchar": _VARCHAR_TYPES,
              **{t: _BLOB_TYPES for t in ("tinytext", "text", "mediumtext", "longtext")}}
_BINARY_LIKE = {"varbinary": _VARCHAR_TYPES,
                **{t: _BLOB_TYPES for t in ("tinyblob", "blob", "mediumblob", "longblob")}}
# Fixed-length binary types: the row format drops trailing \0 bytes, the server pads them back.
_PADDED_BINARY = frozenset({"binary", "uuid", "inet6", "inet4"})
_RAW_TYPES = {
    "date": {R.T_DATE, R.T_NEWDATE}, "time": {R.T_TIME, R.T_TIME2},
    "datetime": {R.T_DATETIME, R.T_DATETIME2}, "timestamp": {R.T_TIMESTAMP, R.T_TIMESTAMP2},
    "year": {R.T_YEAR}, "enum": {R.T_ENUM}, "set": {R.T_SET}, "bit": {R.T_BIT}, "json": {R.T_JSON},
}
# Charsets whose ASCII characters are not single bytes < 0x80.
_WIDE_CODECS = {"ucs2": "utf-16-be", "utf16": "utf-16-be", "utf16le": "utf-16-le", "utf32": "utf-32-be"}
_CONTROLS = bytes(range(0x20)) + b"\x7f"
_ASCII_LOWER = bytes.maketrans(bytes(range(0x41, 0x5B)), bytes(range(0x61, 0x7B)))
_DECIMAL_CONTEXT = Context(prec=100)   # DECIMAL has up to 65 digits: normalize() must not round
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


def _normalizer(col: ColumnInfo, binlog_type: int, meta: int, prefix: int | None,
                schema: SchemaCache) -> Normalizer | None:
    """How to turn one column's row-format bytes into its key value (None: as they are)."""
    dt = col.data_type
    if dt in _INT_TYPES:
        _expect(col, binlog_type, {_INT_TYPES[dt]})
        return partial(int.from_bytes, byteorder="little", signed=not col.unsigned)
    if dt == "decimal":
        _expect(col, binlog_type, {R.T_NEWDECIMAL})
        return partial(_decimal, meta >> 8, meta & 0xFF)
    if dt in ("float", "double"):
        _expect(col, binlog_type, {R.T_FLOAT if dt == "float" else R.T_DOUBLE})
        return _float
    if dt in _PADDED_BINARY:
        _expect(col, binlog_type, {R.T_STRING})
        return _strip_zeros if prefix is None else partial(_prefix_strip_zeros, prefix)
    if dt in _BINARY_LIKE:
        _expect(col, binlog_type, _BINARY_LIKE[dt])
        return None if prefix is None else partial(_prefix_bytes, prefix)
    if dt in _TEXT_LIKE:
        _expect(col, binlog_type, _TEXT_LIKE[dt])
        return _text_normalizer(col, prefix, schema)
    if dt in _RAW_TYPES and prefix is None:
        _expect(col, binlog_type, _RAW_TYPES[dt])
        return None
    raise _Unkeyable(f"column {col.name} of type {dt} in a unique index")


def _expect(col: ColumnInfo, binlog_type: int, allowed: AbstractSet[int]) -> None:
    if binlog_type not in allowed:
        raise _Unkeyable(f"column {col.name} is {col.data_type} on the target but binlog type {binlog_type}")


def _text_normalizer(col: ColumnInfo, prefix: int | None, schema: SchemaCache) -> Normalizer:
    charset, collation = col.charset or "", col.collation or ""
    if not charset or not collation:
        raise _Unkeyable(f"text column {col.name} without a charset")
    codec = _WIDE_CODECS.get(charset)
    if collation.endswith("_bin"):
        if codec is not None:
            return partial(_wide_bin, codec, prefix)
        if prefix is None:
            return _strip_spaces
        maxlen = schema.charset_maxlen(charset)
        if maxlen == 1:
            return partial(_single_byte_prefix_bin, prefix)
        if charset.startswith("utf8"):
            return partial(_utf8_prefix_bin, prefix)
        return partial(_ascii_prefix_bin, prefix)
    if not schema.ascii_folding_safe(charset, collation):
        return _unsafe
    if codec is not None:
        return partial(_wide_fold, codec, prefix)
    return _fold if prefix is None else partial(_prefix_fold, prefix)


def _decimal(precision: int, scale: int, raw: bytes) -> Decimal:
    value = Decimal(decode_decimal(precision, scale, raw))
    return value.normalize(_DECIMAL_CONTEXT) if value else Decimal(0)  # 1.10 = 1.1, -0 = 0


def _float(raw: bytes) -> float:
    return (_FLOAT if len(raw) == 4 else _DOUBLE).unpack(raw)[0] + 0.0  # -0.0 + 0.0 == 0.0


def _strip_zeros(raw: bytes) -> bytes:
    return raw.rstrip(b"\0")


def _prefix_strip_zeros(n: int, raw: bytes) -> bytes:
    return raw[:n].rstrip(b"\0")


def _prefix_bytes(n: int, raw: bytes) -> bytes:
    return raw[:n]


def _strip_spaces(raw: bytes) -> bytes:
    return raw.rstrip(b" ")


def _single_byte_prefix_bin(n: int, raw: bytes) -> bytes:
    return raw[:n].rstrip(b" ")


def _utf8_prefix_bin(n: int, raw: bytes) -> object:
    try:
        return raw.decode("utf-8")[:n].rstrip(" ").encode("utf-8")
    except UnicodeDecodeError:
        return UNSAFE


def _ascii_prefix_bin(n: int, raw: bytes) -> object:
    # Multi-byte charsets other than UTF-8: characters are countable here only in ASCII.
    return raw[:n].rstrip(b" ") if raw.isascii() else UNSAFE


def _wide_bin(codec: str, n: int | None, raw: bytes) -> object:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return UNSAFE
    return (text if n is None else text[:n]).rstrip(" ").encode("utf-8")


def _fold(raw: bytes) -> object:
    if not raw.isascii():
        return UNSAFE  # 'ä' = 'a', 'ß' = 'ss' ...: only the collation tables know
    return raw.translate(_ASCII_LOWER, _CONTROLS).rstrip(b" ")


def _prefix_fold(n: int, raw: bytes) -> object:
    return _fold(raw[:n]) if raw.isascii() else UNSAFE


def _wide_fold(codec: str, n: int | None, raw: bytes) -> object:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return UNSAFE
    if not text.isascii():
        return UNSAFE
    return _fold(text[:n].encode("ascii") if n is not None else text.encode("ascii"))


def _unsafe(raw: bytes) -> object:
    return UNSAFE
