"""Raw row-image values -> exact SQL literals (for `--apply sql`).

`binlog/rows.py` slices each value's bytes out of a row image; this turns those bytes
into text the target parses back to the same stored value, whatever the target's
version or flavour:

- integers, DECIMAL, YEAR, BIT, ENUM (by index) and SET (by bit mask) as numbers;
- FLOAT/DOUBLE as the shortest decimal that reads back to the same binary value;
- temporal values as quoted text with their fraction; TIMESTAMP in UTC (the session
  runs with time_zone '+00:00'); zero dates as zero dates;
- strings with the source column's character set introducer, so no byte is reinterpreted by the
  connection's character set: as hex (`_latin1 X'e9'`), or from 64 KiB on as a quoted literal
  (`_latin1'...'`, see below); binary values and GEOMETRY (internal SRID + WKB format, which the
  server accepts as is) likewise, as `X'...'` or `_binary'...'`;
- MySQL binary JSON re-encoded as JSON text (mysql_json.py).

Hex doubles a value: a 9 MiB one made an 18 MiB statement against the 16 MiB default
max_allowed_packet. A large value's bytes therefore go into the statement as they are, with
mysql_real_escape_string's escapes (backslash, quote, NUL, CR, LF, Ctrl-Z): about 1.0x for text,
1.02x for random bytes. (Measured on 9 MiB: building it costs about 10 ns a byte of text and 40
of random bytes, hex 3 to 8; hence hex below 64 KiB, where doubling is harmless.) This is exact
because the row statements run with character_set_client utf8mb4 and without
NO_BACKSLASH_ESCAPES (sql_rows.session_settings): the parser finds the literal's end by utf8mb4
rules, in which every byte below 0x80 is a character of its own (so a quote or backslash byte
inside a multi-byte character of GBK or SJIS is escaped like any other, and invalid sequences
are single bytes), and an introducer keeps the bytes unconverted. Checked on MariaDB 10.11 for
every character set it has (tests/integration/test_exact_sql_mode.py). The statement text
carries the bytes as `surrogateescape` characters (statements are encoded with it).
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from binreplay.binlog import column_types as T
from binreplay.binlog.column_types import decode_decimal
from binreplay.binlog.mysql_json import binary_json_to_text
from binreplay.errors import UnsupportedError

Render = Callable[[bytes], str]

_EPOCH = datetime.datetime(1970, 1, 1)


@dataclass(frozen=True)
class ColumnType:
    """What rendering one column needs: its binlog type and metadata, and source facts."""

    type_code: int
    meta: int
    unsigned: bool = False
    charset: str | None = None      # source character set of a character column; "binary" for bytes


def renderer(col: ColumnType, target_flavor: str = "mariadb") -> Render:
    """A function from the column's raw value bytes (never NULL) to an SQL literal."""
    t, meta = col.type_code, col.meta
    if t in _INT_SIZES:
        signed = not col.unsigned
        return lambda raw: str(int.from_bytes(raw, "little", signed=signed))
    if t == T.T_YEAR:
        return lambda raw: "0" if raw[0] == 0 else str(1900 + raw[0])   # 0 is YEAR 0000
    if t == T.T_NEWDECIMAL:
        precision, scale = meta >> 8, meta & 0xFF
        return lambda raw: decode_decimal(precision, scale, raw)
    if t == T.T_FLOAT:
        return lambda raw: _float_text(struct.unpack("<f", raw)[0])
    if t == T.T_DOUBLE:
        return lambda raw: _float_text(struct.unpack("<d", raw)[0])
    if t in (T.T_BIT, T.T_ENUM, T.T_SET):
        order: Literal["big", "little"] = "big" if t == T.T_BIT else "little"
        return lambda raw: str(int.from_bytes(raw, order))
    if t in _TEMPORAL:
        decode = _TEMPORAL[t]
        return lambda raw: "'" + decode(raw, meta) + "'"
    if t == T.T_JSON:
        if target_flavor == "mysql":
            return lambda raw: "CAST(" + string_literal("utf8mb4", binary_json_to_text(raw).encode()) + " AS JSON)"
        return lambda raw: string_literal("utf8mb4", binary_json_to_text(raw).encode())
    if t in (T.T_VARCHAR_COMPRESSED, T.T_BLOB_COMPRESSED):
        raise UnsupportedError("MariaDB COMPRESSED columns cannot be applied with --apply sql; use --apply binlog")
    if t in _STRINGS:
        charset = col.charset or "binary"
        if t == T.T_STRING and charset == "binary":
            # BINARY(n) is logged without its trailing 0x00 pad bytes; a WHERE needs the stored value.
            return lambda raw: string_literal(charset, raw.ljust(meta, b"\0"))
        return lambda raw: string_literal(charset, raw)
    raise UnsupportedError(f"column type {t} cannot be applied with --apply sql")


_INT_SIZES = {T.T_TINY: 1, T.T_SHORT: 2, T.T_INT24: 3, T.T_LONG: 4, T.T_LONGLONG: 8}
_STRINGS = frozenset({T.T_STRING, T.T_VAR_STRING, T.T_VARCHAR, T.T_BLOB, T.T_TINY_BLOB, T.T_MEDIUM_BLOB,
                      T.T_LONG_BLOB, T.T_GEOMETRY})


def string_literal(charset: str, raw: bytes) -> str:
    """`raw` as a literal of character set `charset` ("binary" for bytes), whatever its bytes."""
    if len(raw) >= QUOTED_FROM:
        return quoted(charset, raw)
    if not raw:
        return "''" if charset == "binary" else f"_{charset}''"
    if charset == "binary":
        return "X'" + raw.hex() + "'"
    return f"_{charset} X'{raw.hex()}'"


QUOTED_FROM = 64 << 10    # bytes: a value at least this long is quoted, not hex (module docstring)


def quoted(charset: str, raw: bytes) -> str:
    """`raw` as a string literal of `charset` (see the module docstring): its bytes as they are
    (as surrogateescape text), with the escapes of mysql_real_escape_string."""
    for byte, escape in _ESCAPES:
        if byte in raw:
            raw = raw.replace(byte, escape)
    return f"_{charset}'" + raw.decode("utf-8", "surrogateescape") + "'"


# The backslash first: the others add backslashes.
_ESCAPES = ((b"\\", b"\\\\"), (b"'", b"\\'"), (b"\0", b"\\0"), (b"\n", b"\\n"), (b"\r", b"\\r"),
            (b"\x1a", b"\\Z"))


def _float_text(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise UnsupportedError(f"the floating-point value {value} cannot be written as SQL")
    return repr(value)


# --- temporal ------------------------------------------------------------------

def _fraction(raw: bytes, fsp: int) -> int:
    """Microseconds of a temporal2 fraction: (fsp + 1) // 2 big-endian bytes."""
    n = (fsp + 1) // 2
    if not n:
        return 0
    v = int.from_bytes(raw[-n:], "big")
    return v * (10_000, 100, 1)[n - 1]


def _fraction_text(usec: int, fsp: int) -> str:
    return f".{usec:06d}"[:fsp + 1] if fsp else ""


def _date(raw: bytes, _meta: int) -> str:
    v = int.from_bytes(raw, "little")
    return f"{v >> 9:04d}-{v >> 5 & 15:02d}-{v & 31:02d}"


def _datetime2(raw: bytes, fsp: int) -> str:
    v = int.from_bytes(raw[:5], "big") - 0x8000000000
    ymd, hms = v >> 17, v & 0x1FFFF
    ym = ymd >> 5
    return (f"{ym // 13:04d}-{ym % 13:02d}-{ymd & 31:02d} {hms >> 12:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}"
            + _fraction_text(_fraction(raw, fsp), fsp))


def _timestamp2(raw: bytes, fsp: int) -> str:
    seconds = int.from_bytes(raw[:4], "big")
    usec = _fraction(raw, fsp)
    if seconds == 0 and usec == 0:
        return "0000-00-00 00:00:00" + _fraction_text(0, fsp)
    moment = _EPOCH + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + _fraction_text(usec, fsp)


def _time2(raw: bytes, fsp: int) -> str:
    # The packed value (int part << 24 | microseconds) is stored with a sign offset;
    # for negative times the fraction is a borrow from the int part.
    n = (fsp + 1) // 2
    intpart = int.from_bytes(raw[:3], "big") - 0x800000
    if n == 3:
        packed = int.from_bytes(raw[:6], "big") - 0x800000000000
    else:
        frac = int.from_bytes(raw[3:3 + n], "big") if n else 0
        if intpart < 0 and frac:
            intpart += 1
            frac -= 0x100 if n == 1 else 0x10000
        packed = (intpart << 24) + frac * (10_000 if n == 1 else 100 if n == 2 else 0)
    sign = "-" if packed < 0 else ""
    packed = abs(packed)
    hms, usec = packed >> 24, packed & 0xFFFFFF
    return f"{sign}{hms >> 12 & 0x3FF:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}" + _fraction_text(usec, fsp)


def _old_time(raw: bytes, _meta: int) -> str:
    v = int.from_bytes(raw, "little", signed=True)
    sign = "-" if v < 0 else ""
    v = abs(v)
    return f"{sign}{v // 10000:02d}:{v // 100 % 100:02d}:{v % 100:02d}"


def _old_datetime(raw: bytes, _meta: int) -> str:
    v = int.from_bytes(raw, "little")
    d, t = divmod(v, 1_000_000)
    return f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d} {t // 10000:02d}:{t // 100 % 100:02d}:{t % 100:02d}"


def _old_timestamp(raw: bytes, _meta: int) -> str:
    return _timestamp2(int.from_bytes(raw, "little").to_bytes(4, "big"), 0)


_TEMPORAL: dict[int, Callable[[bytes, int], str]] = {
    T.T_DATE: _date, T.T_NEWDATE: _date, T.T_DATETIME2: _datetime2, T.T_TIMESTAMP2: _timestamp2,
    T.T_TIME2: _time2, T.T_TIME: _old_time, T.T_DATETIME: _old_datetime, T.T_TIMESTAMP: _old_timestamp,
}
