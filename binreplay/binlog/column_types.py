"""Column types of the row format: the MYSQL_TYPE_* codes TABLE_MAP events log, and how a value of
each type sits in a row image (a fixed size, or a length prefix then the data).

The lowest layer of reading row images: `table_map.py` reads a table's types and per-column
metadata with these codes, `rows.py` walks row images with `column_layout`. Anything they cannot
read with certainty raises `RowFormatError`; callers then fall back to a coarser key (or refuse).
"""

from __future__ import annotations

from dataclasses import dataclass


class RowFormatError(Exception):
    """A TABLE_MAP or rows event we cannot walk with certainty (unknown type, partial update, ...)."""


# MYSQL_TYPE_* codes as they appear in TABLE_MAP events.
T_DECIMAL = 0
T_TINY = 1
T_SHORT = 2
T_LONG = 3
T_FLOAT = 4
T_DOUBLE = 5
T_NULL = 6
T_TIMESTAMP = 7
T_LONGLONG = 8
T_INT24 = 9
T_DATE = 10
T_TIME = 11
T_DATETIME = 12
T_YEAR = 13
T_NEWDATE = 14
T_VARCHAR = 15
T_BIT = 16
T_TIMESTAMP2 = 17
T_DATETIME2 = 18
T_TIME2 = 19
T_BLOB_COMPRESSED = 140      # MariaDB COMPRESSED columns: same row format, compressed bytes
T_VARCHAR_COMPRESSED = 141
T_JSON = 245                  # MySQL binary JSON (MariaDB logs JSON as a BLOB)
T_NEWDECIMAL = 246
T_ENUM = 247
T_SET = 248
T_TINY_BLOB = 249
T_MEDIUM_BLOB = 250
T_LONG_BLOB = 251
T_BLOB = 252
T_VAR_STRING = 253
T_STRING = 254
T_GEOMETRY = 255

# Bytes of a value of each fixed-size type; TEMPORAL2 types add (fsp + 1) // 2 to their base.
FIXED_SIZES = {
    T_TINY: 1, T_SHORT: 2, T_INT24: 3, T_LONG: 4, T_LONGLONG: 8, T_NULL: 0, T_YEAR: 1,
    T_DATE: 3, T_NEWDATE: 3, T_TIME: 3, T_TIMESTAMP: 4, T_DATETIME: 8,
}
TEMPORAL2_BASE = {T_TIMESTAMP2: 4, T_DATETIME2: 5, T_TIME2: 3}
# MariaDB's own fractional temporal formats (tables created before 10.1 or with
# mysql56_temporal_format=OFF) are logged with the old type codes and no
# metadata: their size depends on the fsp, which only the table definition knows.
_HIRES_SIZES = {
    T_TIME: (3, 4, 4, 5, 5, 5, 6),
    T_DATETIME: (8, 6, 6, 7, 7, 7, 8),
    T_TIMESTAMP: (4, 5, 5, 6, 6, 7, 7),
}
# Length-prefixed types: a 1- or 2-byte prefix (by the max length), or the BLOB family's 1-4 bytes.
VARCHAR_TYPES = frozenset({T_VARCHAR, T_VAR_STRING, T_VARCHAR_COMPRESSED})
BLOB_TYPES = frozenset({T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB, T_BLOB, T_BLOB_COMPRESSED, T_GEOMETRY, T_JSON})
_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)


@dataclass(frozen=True)
class ColumnLayout:
    """How a value sits in a row image: `prefix` length bytes then data, or `size` fixed bytes."""

    prefix: int
    size: int


def column_layout(type_code: int, meta: int, fsp: int = 0) -> ColumnLayout:
    """`fsp` matters only for the old TIME/DATETIME/TIMESTAMP codes (see _HIRES_SIZES)."""
    if fsp and type_code in _HIRES_SIZES:
        return ColumnLayout(0, _HIRES_SIZES[type_code][fsp])
    if type_code in FIXED_SIZES:
        return ColumnLayout(0, FIXED_SIZES[type_code])
    if type_code in (T_FLOAT, T_DOUBLE):
        return ColumnLayout(0, meta)
    if type_code in TEMPORAL2_BASE:
        return ColumnLayout(0, TEMPORAL2_BASE[type_code] + (meta + 1) // 2)
    if type_code in VARCHAR_TYPES or type_code == T_STRING:
        return ColumnLayout(1 if meta < 256 else 2, 0)
    if type_code in BLOB_TYPES:
        if not 1 <= meta <= 4:
            raise RowFormatError(f"BLOB length prefix of {meta} bytes")
        return ColumnLayout(meta, 0)
    if type_code in (T_ENUM, T_SET):
        return ColumnLayout(0, meta & 0xFF)
    if type_code == T_NEWDECIMAL:
        return ColumnLayout(0, decimal_size(meta >> 8, meta & 0xFF))
    if type_code == T_BIT:
        return ColumnLayout(0, (meta & 0xFF) + (1 if meta >> 8 else 0))
    raise RowFormatError(f"column type {type_code} is not supported")


def decimal_size(precision: int, scale: int) -> int:
    """Bytes of a binary DECIMAL(precision, scale): 4 per 9 digits, less for the rest."""
    integral = precision - scale
    return (integral // 9 * 4 + _DIG2BYTES[integral % 9] + scale // 9 * 4 + _DIG2BYTES[scale % 9])


def decode_decimal(precision: int, scale: int, data: bytes) -> str:
    """MySQL binary DECIMAL -> its exact decimal string."""
    integral = precision - scale
    int_full, int_rest = divmod(integral, 9)
    frac_full, frac_rest = divmod(scale, 9)
    buf = bytearray(data[:decimal_size(precision, scale)])
    negative = not buf[0] & 0x80
    buf[0] ^= 0x80
    if negative:
        buf = bytearray(b ^ 0xFF for b in buf)
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        v = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
        return v

    int_digits = ""
    if int_rest:
        int_digits += str(take(_DIG2BYTES[int_rest]))
    for _ in range(int_full):
        int_digits += f"{take(4):09d}"
    frac_digits = ""
    for _ in range(frac_full):
        frac_digits += f"{take(4):09d}"
    if frac_rest:
        frac_digits += f"{take(_DIG2BYTES[frac_rest]):0{frac_rest}d}"
    int_digits = int_digits.lstrip("0") or "0"
    text = int_digits + ("." + frac_digits if scale else "")
    return ("-" + text) if negative else text
