"""Raw row images of ROWS events: where each value's bytes are, without decoding rows.

Conflict keys (`binreplay.schedule.keys`) need a few column values of every row image,
for every row of every transaction, so this must be fast in pure Python. A
`RowWalker` compiles, once per (present-columns bitmap, wanted columns), a
small Python function that steps over a row image: it slices out the wanted
values and only skips the others (fixed-size runs of NOT NULL columns become
one addition).

Values come back as the raw bytes of the row format (no length prefix), None
for SQL NULL, or `ABSENT` when the column is not in that image at all
(binlog_row_image=MINIMAL/NOBLOB). Anything we cannot walk with certainty
raises `RowFormatError`; callers then fall back to a coarser key.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

from binreplay.binlog import constants as C
from binreplay.binlog.events import decompress_mariadb, read_packed_int
from binreplay.errors import BadInputError
from binreplay.model import TableMapInfo

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

_FIXED_SIZES = {
    T_TINY: 1, T_SHORT: 2, T_INT24: 3, T_LONG: 4, T_LONGLONG: 8, T_NULL: 0, T_YEAR: 1,
    T_DATE: 3, T_NEWDATE: 3, T_TIME: 3, T_TIMESTAMP: 4, T_DATETIME: 8,
}
_TEMPORAL2_BASE = {T_TIMESTAMP2: 4, T_DATETIME2: 5, T_TIME2: 3}
# MariaDB's own fractional temporal formats (tables created before 10.1 or with
# mysql56_temporal_format=OFF) are logged with the old type codes and no
# metadata: their size depends on the fsp, which only the table definition knows.
_HIRES_SIZES = {
    T_TIME: (3, 4, 4, 5, 5, 5, 6),
    T_DATETIME: (8, 6, 6, 7, 7, 7, 8),
    T_TIMESTAMP: (4, 5, 5, 6, 6, 7, 7),
}
_VARCHARS = frozenset({T_VARCHAR, T_VAR_STRING, T_VARCHAR_COMPRESSED})
_BLOBS = frozenset({T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB, T_BLOB, T_BLOB_COMPRESSED, T_GEOMETRY, T_JSON})
_META_ONE_BYTE = frozenset({T_FLOAT, T_DOUBLE, *_TEMPORAL2_BASE, *_BLOBS})
_META_TWO_BYTES_LE = _VARCHARS
_META_TWO_BYTES_BE = frozenset({T_NEWDECIMAL, T_BIT, T_STRING, T_ENUM, T_SET})
_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)

_WRITE = frozenset({C.WRITE_ROWS_EVENT_V1, C.WRITE_ROWS_EVENT, C.WRITE_ROWS_COMPRESSED_EVENT_V1,
                    C.WRITE_ROWS_COMPRESSED_EVENT})
_UPDATE = frozenset({C.UPDATE_ROWS_EVENT_V1, C.UPDATE_ROWS_EVENT, C.UPDATE_ROWS_COMPRESSED_EVENT_V1,
                     C.UPDATE_ROWS_COMPRESSED_EVENT})
_DELETE = frozenset({C.DELETE_ROWS_EVENT_V1, C.DELETE_ROWS_EVENT, C.DELETE_ROWS_COMPRESSED_EVENT_V1,
                     C.DELETE_ROWS_COMPRESSED_EVENT})
_V2 = frozenset({C.WRITE_ROWS_EVENT, C.UPDATE_ROWS_EVENT, C.DELETE_ROWS_EVENT,
                 C.WRITE_ROWS_COMPRESSED_EVENT, C.UPDATE_ROWS_COMPRESSED_EVENT, C.DELETE_ROWS_COMPRESSED_EVENT})
_COMPRESSED = frozenset(range(C.WRITE_ROWS_COMPRESSED_EVENT_V1, C.DELETE_ROWS_COMPRESSED_EVENT + 1))

WRITE, UPDATE, DELETE = "write", "update", "delete"


class RowFormatError(Exception):
    """A TABLE_MAP or rows event we cannot walk with certainty (unknown type, partial update, ...)."""


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
"""Placeholder for a column that is not part of a row image (MINIMAL/NOBLOB images)."""


# --- TABLE_MAP ---------------------------------------------------------------

@dataclass(frozen=True)
class TableMap:
    """The full TABLE_MAP body: everything needed to walk the table's row images.

    `types` holds the real type of CHAR/ENUM/SET columns (logged as STRING);
    `metadata` is the per-column metadata as one int whose meaning depends on
    the type: max byte length (VARCHAR, CHAR), pack length (FLOAT/DOUBLE, ENUM,
    SET), length-prefix bytes (BLOB family), fsp (temporal2),
    precision << 8 | scale (NEWDECIMAL), bits % 8 << 8 | bytes (BIT).
    """

    table_id: int
    schema: str
    table: str
    types: tuple[int, ...]
    metadata: tuple[int, ...]
    nullable: tuple[bool, ...]
    # The optional metadata after the NULL bitmap (binlog_row_metadata; see table_meta.py).
    optional: bytes = field(default=b"", repr=False, compare=False)

    @property
    def column_count(self) -> int:
        return len(self.types)


def parse_table_map(body: bytes, post_header_len: int) -> TableMap:
    """Parse a TABLE_MAP event body (header and checksum removed)."""
    try:
        return _parse_table_map(body, post_header_len)
    except (IndexError, BadInputError) as exc:
        raise RowFormatError(f"malformed TABLE_MAP event: {exc}") from None


def table_map_names(body: bytes, post_header_len: int) -> tuple[TableMapInfo, int]:
    """The table id and names a TABLE_MAP body starts with, and the offset of what follows them
    (the one reading of this layout: the full parse below and the reader both use it)."""
    if post_header_len == 6:  # pre-5.1.4 servers: 4-byte table id
        table_id, pos = int.from_bytes(body[0:4], "little"), 6
    else:
        table_id, pos = int.from_bytes(body[0:6], "little"), post_header_len
    n = body[pos]
    schema = body[pos + 1:pos + 1 + n].decode("utf-8", "replace")
    pos += n + 2  # length byte, name, NUL
    n = body[pos]
    table = body[pos + 1:pos + 1 + n].decode("utf-8", "replace")
    return TableMapInfo(table_id, schema, table), pos + n + 2


def _parse_table_map(body: bytes, post_header_len: int) -> TableMap:
    names, pos = table_map_names(body, post_header_len)
    table_id, schema, table = names.table_id, names.schema, names.table
    count, pos = read_packed_int(body, pos)
    types = list(body[pos:pos + count])
    pos += count
    meta_len, pos = read_packed_int(body, pos)
    metadata = _read_metadata(types, body[pos:pos + meta_len])
    pos += meta_len
    null_bits = int.from_bytes(body[pos:pos + (count + 7) // 8], "little")
    if len(types) != count or pos + (count + 7) // 8 > len(body):
        raise RowFormatError(f"truncated TABLE_MAP event for {schema}.{table}")
    nullable = tuple(bool(null_bits >> i & 1) for i in range(count))
    optional = bytes(body[pos + (count + 7) // 8:])
    return TableMap(table_id, schema, table, tuple(types), tuple(metadata), nullable, optional)


def _read_metadata(types: list[int], meta: bytes) -> list[int]:
    """Per-column metadata; rewrites `types` in place with the real type of STRING columns."""
    out: list[int] = []
    pos = 0
    for i, t in enumerate(types):
        if t in _META_ONE_BYTE:
            out.append(meta[pos])
            pos += 1
        elif t in _META_TWO_BYTES_LE:
            out.append(meta[pos] | meta[pos + 1] << 8)
            pos += 2
        elif t in _META_TWO_BYTES_BE:
            b0, b1 = meta[pos], meta[pos + 1]
            pos += 2
            if t == T_STRING:
                types[i], b1 = _string_real_type(b0, b1)
                out.append(b1)
            else:
                out.append(b0 << 8 | b1)
        elif t in _FIXED_SIZES:
            out.append(0)
        else:
            raise RowFormatError(f"column type {t} is not supported")
    if pos != len(meta):
        raise RowFormatError("TABLE_MAP metadata length does not match the column types")
    return out


def _string_real_type(b0: int, b1: int) -> tuple[int, int]:
    """STRING metadata -> (real type, max length): CHAR > 255 bytes keeps 2 length bits in b0."""
    if b0 & 0x30 != 0x30:  # a CHAR longer than 255 bytes (MySQL bug #37426 encoding)
        return b0 | 0x30, b1 | ((b0 & 0x30) ^ 0x30) << 4
    return b0, b1


# --- per-column layout ---------------------------------------------------------

@dataclass(frozen=True)
class ColumnLayout:
    """How a value sits in a row image: `prefix` length bytes then data, or `size` fixed bytes."""

    prefix: int
    size: int


def column_layout(type_code: int, meta: int, fsp: int = 0) -> ColumnLayout:
    """`fsp` matters only for the old TIME/DATETIME/TIMESTAMP codes (see _HIRES_SIZES)."""
    if fsp and type_code in _HIRES_SIZES:
        return ColumnLayout(0, _HIRES_SIZES[type_code][fsp])
    if type_code in _FIXED_SIZES:
        return ColumnLayout(0, _FIXED_SIZES[type_code])
    if type_code in (T_FLOAT, T_DOUBLE):
        return ColumnLayout(0, meta)
    if type_code in _TEMPORAL2_BASE:
        return ColumnLayout(0, _TEMPORAL2_BASE[type_code] + (meta + 1) // 2)
    if type_code in _VARCHARS or type_code == T_STRING:
        return ColumnLayout(1 if meta < 256 else 2, 0)
    if type_code in _BLOBS:
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


# --- rows events -------------------------------------------------------------

@dataclass(frozen=True)
class RowsEvent:
    kind: str                   # WRITE, UPDATE or DELETE
    table_id: int
    flags: int
    column_count: int
    present: int                # bit i set: column i is in the (before) image
    present_after: int | None   # UPDATE: the after image's bitmap
    data: bytes = field(repr=False)  # the row images, decompressed


def rows_kind(type_code: int) -> str:
    if type_code in _WRITE:
        return WRITE
    if type_code in _UPDATE:
        return UPDATE
    if type_code in _DELETE:
        return DELETE
    raise RowFormatError(f"rows event type {type_code} cannot be walked (partial JSON update?)")


def rows_table_id(body: bytes, post_header_len: int) -> int:
    """The table id a rows event refers to (readable even when the rest is not)."""
    return int.from_bytes(body[0:4] if post_header_len == 6 else body[0:6], "little")


def parse_rows_event(type_code: int, body: bytes, post_header_len: int) -> RowsEvent:
    """Parse a rows event body (header and checksum removed) down to its row images."""
    try:
        return _parse_rows_event(type_code, body, post_header_len)
    except (IndexError, BadInputError, zlib.error) as exc:
        raise RowFormatError(f"malformed rows event: {exc}") from None


def _parse_rows_event(type_code: int, body: bytes, post_header_len: int) -> RowsEvent:
    kind = rows_kind(type_code)
    if post_header_len == 6:
        table_id, pos = int.from_bytes(body[0:4], "little"), 4
    else:
        table_id, pos = int.from_bytes(body[0:6], "little"), 6
    flags = int.from_bytes(body[pos:pos + 2], "little")
    pos += 2
    if type_code in _V2:  # extra data: its 2-byte length counts itself
        pos += int.from_bytes(body[pos:pos + 2], "little")
    count, pos = read_packed_int(body, pos)
    nbytes = (count + 7) // 8
    present = int.from_bytes(body[pos:pos + nbytes], "little")
    pos += nbytes
    present_after = None
    if kind == UPDATE:
        present_after = int.from_bytes(body[pos:pos + nbytes], "little")
        pos += nbytes
    data = body[pos:]
    if type_code in _COMPRESSED:  # MariaDB compresses only the row images
        data = decompress_mariadb(data)
    return RowsEvent(kind, table_id, flags, count, present, present_after, bytes(data))


# --- walking -------------------------------------------------------------------

Walker = Callable[[bytes, int], tuple[int, tuple]]


class RowWalker:
    """Steps over the row images of one table; walkers are compiled on first use and cached."""

    def __init__(self, tmap: TableMap, fsp: tuple[int, ...] | None = None) -> None:
        """`fsp`: each column's fractional-seconds precision from the table definition, needed
        only to size MariaDB's old-format fractional temporal columns (see _HIRES_SIZES)."""
        self.table_map = tmap
        fsp = fsp or (0,) * tmap.column_count
        self.layout = tuple(column_layout(t, m, f) for t, m, f in zip(tmap.types, tmap.metadata, fsp))
        self._walkers: dict[tuple[int, tuple[int, ...]], Walker] = {}

    def images(self, ev: RowsEvent, wanted: tuple[int, ...]) -> list[tuple]:
        """The wanted columns' values of every image in the event, in order.

        UPDATE events give before, after, before, after, ...
        """
        if ev.column_count != self.table_map.column_count:
            raise RowFormatError("rows event and TABLE_MAP disagree on the column count")
        walkers = [self._walker(ev.present, wanted)]
        if ev.present_after is not None and ev.present_after != ev.present:
            walkers.append(self._walker(ev.present_after, wanted))  # before and after images alternate
        data = ev.data
        end = len(data)
        out: list[tuple] = []
        append = out.append
        pos = 0
        try:
            if len(walkers) == 1:
                walk = walkers[0]
                while pos < end:
                    pos, values = walk(data, pos)
                    append(values)
            else:
                before, after = walkers
                while pos < end:
                    pos, values = before(data, pos)
                    append(values)
                    pos, values = after(data, pos)
                    append(values)
        except IndexError:
            raise RowFormatError("row image runs past the end of the event") from None
        if pos != end:
            raise RowFormatError("row images do not end where the event ends")
        return out

    def _walker(self, present: int, wanted: tuple[int, ...]) -> Walker:
        key = (present, wanted)
        walker = self._walkers.get(key)
        if walker is None:
            walker = self._walkers[key] = compile_walker(self.layout, self.table_map.nullable, present, wanted)
        return walker


def compile_walker(layout: tuple[ColumnLayout, ...], nullable: tuple[bool, ...], present: int,
                   wanted: tuple[int, ...]) -> Walker:
    """Generate `walk(buf, p) -> (p_after_row, wanted_values)` for one image shape.

    Generated rather than interpreted: a per-column dispatch loop costs several
    times more per row, and this runs on every row of the binlog.
    """
    columns = [i for i in range(len(layout)) if present >> i & 1]
    null_bytes = (len(columns) + 7) // 8
    lines = ["def walk(buf, p):"]
    if null_bytes == 1:
        lines.append("    nb = buf[p]")
    elif null_bytes:
        lines.append(f"    nb = int.from_bytes(buf[p:p + {null_bytes}], 'little')")
    # A NULL flag on a NOT NULL column means we misread the image: refuse it.
    not_null_mask = sum(1 << j for j, i in enumerate(columns) if not nullable[i])
    if not_null_mask:
        lines.append(f"    if nb & {not_null_mask}: raise RowFormatError('NULL flag on a NOT NULL column')")
    skip = null_bytes  # bytes to add to p before the next non-constant step
    want = set(wanted)
    for j, i in enumerate(columns):
        col = layout[i]
        if not nullable[i] and i not in want and not col.prefix:
            skip += col.size
            continue
        if skip:
            lines.append(f"    p += {skip}")
            skip = 0
        body = _read_value(col, f"v{i}" if i in want else None)
        if nullable[i] and i in want:
            lines += [f"    if nb & {1 << j}:", f"        v{i} = None", "    else:"]
            lines.extend("        " + s for s in body)
        elif nullable[i]:
            lines.append(f"    if not nb & {1 << j}:")
            lines.extend("        " + s for s in body)
        else:
            lines.extend("    " + s for s in body)
    if skip:
        lines.append(f"    p += {skip}")
    values = ", ".join("ABSENT" if not present >> i & 1 else f"v{i}" for i in wanted)
    lines.append(f"    return p, ({values}{',' if len(wanted) == 1 else ''})")
    namespace: dict[str, object] = {"ABSENT": ABSENT, "RowFormatError": RowFormatError}
    exec(compile("\n".join(lines), "<row walker>", "exec"), namespace)
    return namespace["walk"]  # type: ignore[return-value]


def _read_value(col: ColumnLayout, target: str | None) -> list[str]:
    """Statements that step over one non-NULL value, storing its bytes in `target` if given."""
    if not col.prefix:
        if target is None:
            return [f"p += {col.size}"]
        return [f"{target} = buf[p:p + {col.size}]", f"p += {col.size}"]
    length = {
        1: "buf[p]",
        2: "buf[p] | buf[p + 1] << 8",
        3: "buf[p] | buf[p + 1] << 8 | buf[p + 2] << 16",
        4: "int.from_bytes(buf[p:p + 4], 'little')",
    }[col.prefix]
    lines = [f"n = {length}", f"p += {col.prefix}"]
    if target is not None:
        lines.append(f"{target} = buf[p:p + n]")
    lines.append("p += n")
    return lines
