"""Key values of one column, for the conflict keys of keys.py: its row-format bytes turned into a
value that compares the way the target compares the column's values, or coarser.

Integers and DECIMAL by value, FLOAT/DOUBLE by value with -0 = 0, binary strings by bytes
(BINARY without its \\0 padding), _bin collations by bytes without trailing spaces, other
collations only for pure-ASCII values (lower-cased, control characters and trailing spaces
dropped; non-ASCII -> UNSAFE, the index-wide key) and only if the target's WEIGHT_STRING shows
the collation treats printable ASCII that way (utf8mb4_roman_ci has I = J, big5_chinese_ci
'E' = '`' ...: never folded; `SchemaCache.ascii_folding_safe`), everything else (temporal, ENUM,
SET, BIT, ...) by its exact row-format bytes. Prefix unique indexes key on the prefix (characters
for text, bytes for binary); a non-ASCII prefix in a multi-byte charset other than
UTF-8/UTF-16/UTF-32 cannot be cut at a character boundary here and is UNSAFE. A column whose
target and binlog types disagree, or of a type no rule covers, raises `Unkeyable`: its table is
then keyed as a whole.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Set
from decimal import Context, Decimal
from functools import partial

from binreplay.binlog import column_types as T
from binreplay.binlog.column_types import decode_decimal
from binreplay.server.tables import ColumnInfo, SchemaCache

UNSAFE = object()
"""A normalizer's answer when it cannot reproduce the collation's equality for a value."""

Normalizer = Callable[[bytes], object]


class Unkeyable(Exception):
    """The table can only be keyed as a whole."""


_INT_TYPES = {"tinyint": T.T_TINY, "smallint": T.T_SHORT, "mediumint": T.T_INT24, "int": T.T_LONG,
              "integer": T.T_LONG, "bigint": T.T_LONGLONG}
_VARCHAR_TYPES = frozenset({T.T_VARCHAR, T.T_VAR_STRING, T.T_VARCHAR_COMPRESSED})
_BLOB_TYPES = frozenset({T.T_TINY_BLOB, T.T_BLOB, T.T_MEDIUM_BLOB, T.T_LONG_BLOB, T.T_BLOB_COMPRESSED})
_TEXT_LIKE = {"char": {T.T_STRING}, "varchar": _VARCHAR_TYPES,
              **{t: _BLOB_TYPES for t in ("tinytext", "text", "mediumtext", "longtext")}}
_BINARY_LIKE = {"varbinary": _VARCHAR_TYPES,
                **{t: _BLOB_TYPES for t in ("tinyblob", "blob", "mediumblob", "longblob")}}
# Fixed-length binary types: the row format drops trailing \0 bytes, the server pads them back.
_PADDED_BINARY = frozenset({"binary", "uuid", "inet6", "inet4"})
_RAW_TYPES = {
    "date": {T.T_DATE, T.T_NEWDATE}, "time": {T.T_TIME, T.T_TIME2},
    "datetime": {T.T_DATETIME, T.T_DATETIME2}, "timestamp": {T.T_TIMESTAMP, T.T_TIMESTAMP2},
    "year": {T.T_YEAR}, "enum": {T.T_ENUM}, "set": {T.T_SET}, "bit": {T.T_BIT}, "json": {T.T_JSON},
}
# Charsets whose ASCII characters are not single bytes < 0x80.
_WIDE_CODECS = {"ucs2": "utf-16-be", "utf16": "utf-16-be", "utf16le": "utf-16-le", "utf32": "utf-32-be"}
_CONTROLS = bytes(range(0x20)) + b"\x7f"
_ASCII_LOWER = bytes.maketrans(bytes(range(0x41, 0x5B)), bytes(range(0x61, 0x7B)))
_DECIMAL_CONTEXT = Context(prec=100)   # DECIMAL has up to 65 digits: normalize() must not round
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


def normalizer(col: ColumnInfo, binlog_type: int, meta: int, prefix: int | None,
                schema: SchemaCache) -> Normalizer | None:
    """How to turn one column's row-format bytes into its key value (None: as they are)."""
    dt = col.data_type
    if dt in _INT_TYPES:
        _expect(col, binlog_type, {_INT_TYPES[dt]})
        return partial(int.from_bytes, byteorder="little", signed=not col.unsigned)
    if dt == "decimal":
        _expect(col, binlog_type, {T.T_NEWDECIMAL})
        return partial(_decimal, meta >> 8, meta & 0xFF)
    if dt in ("float", "double"):
        _expect(col, binlog_type, {T.T_FLOAT if dt == "float" else T.T_DOUBLE})
        return _float
    if dt in _PADDED_BINARY:
        _expect(col, binlog_type, {T.T_STRING})
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
    raise Unkeyable(f"column {col.name} of type {dt} in a unique index")


def _expect(col: ColumnInfo, binlog_type: int, allowed: Set[int]) -> None:
    if binlog_type not in allowed:
        raise Unkeyable(f"column {col.name} is {col.data_type} on the target but binlog type {binlog_type}")


def _text_normalizer(col: ColumnInfo, prefix: int | None, schema: SchemaCache) -> Normalizer:
    charset, collation = col.charset or "", col.collation or ""
    if not charset or not collation:
        raise Unkeyable(f"text column {col.name} without a charset")
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
