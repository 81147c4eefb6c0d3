"""TABLE_MAP events: the table a rows event refers to, its column types and per-column metadata.

The one parser of this layout: `table_map_names` reads the table id and names (all the reader and
the scheduler's cache need), `parse_table_map` everything needed to walk the table's row images
(rows.py). The optional metadata after the NULL bitmap is kept as bytes for table_meta.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from binreplay.binlog.column_types import (
    BLOB_TYPES,
    FIXED_SIZES,
    T_BIT,
    T_DOUBLE,
    T_ENUM,
    T_FLOAT,
    T_NEWDECIMAL,
    T_SET,
    T_STRING,
    TEMPORAL2_BASE,
    VARCHAR_TYPES,
    RowFormatError,
)
from binreplay.binlog.events import read_packed_int
from binreplay.binlog.header import table_id_len
from binreplay.errors import BadInputError
from binreplay.model import TableMapInfo

# How many bytes of per-column metadata each type has (none: the fixed-size types).
_META_ONE_BYTE = frozenset({T_FLOAT, T_DOUBLE, *TEMPORAL2_BASE, *BLOB_TYPES})
_META_TWO_BYTES_LE = VARCHAR_TYPES
_META_TWO_BYTES_BE = frozenset({T_NEWDECIMAL, T_BIT, T_STRING, T_ENUM, T_SET})

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


def layout_key(body: bytes, post_header_len: int) -> bytes:
    """A TABLE_MAP body without its table id: the same for every statement on the table while its
    definition stands (ids change, layouts rarely), so what is derived from it is cached by this."""
    return body[table_id_len(post_header_len):]


def table_map_names(body: bytes, post_header_len: int) -> tuple[TableMapInfo, int]:
    """The table id and names a TABLE_MAP body starts with, and the offset of what follows them
    (the one reading of this layout: the full parse below and the reader both use it). A body too
    short for them, or names not NUL-terminated, is bad input."""
    table_id = int.from_bytes(body[0:table_id_len(post_header_len)], "little")
    pos = post_header_len   # past the table id and the flags word
    names = []
    for _ in range(2):     # the schema, then the table: a length byte, the name, a NUL
        if pos >= len(body):
            raise BadInputError(f"the TABLE_MAP event ends before its names ({len(body)} bytes)")
        n = body[pos]
        if pos + n + 2 > len(body) or body[pos + n + 1] != 0:
            raise BadInputError("the TABLE_MAP event's names run past its end or are not NUL-terminated")
        names.append(bytes(body[pos + 1:pos + 1 + n]).decode("utf-8", "replace"))
        pos += n + 2
    return TableMapInfo(table_id, names[0], names[1]), pos


def check_table_map(body: bytes, post_header_len: int) -> TableMapInfo:
    """`table_map_names`, after checking that the whole body is framed as a TABLE_MAP: the column
    count, the types, the metadata, the NULL bitmap and the optional metadata fields all fit in the
    event (what the reader checks before anything is applied; column types are not judged here)."""
    info, pos = table_map_names(body, post_header_len)
    count, pos = read_packed_int(body, pos)
    if count == 0:
        raise BadInputError(f"the TABLE_MAP event of {info.schema}.{info.table} has no columns")
    pos += count
    if pos > len(body):
        raise BadInputError(f"the TABLE_MAP event of {info.schema}.{info.table} ends inside its column types")
    meta_len, pos = read_packed_int(body, pos)
    pos += meta_len + (count + 7) // 8
    if pos > len(body):
        raise BadInputError(f"the TABLE_MAP event of {info.schema}.{info.table} ends inside its column metadata")
    while pos < len(body):   # optional metadata: type byte, length, value
        length, pos = read_packed_int(body, pos + 1)
        pos += length
        if pos > len(body):
            raise BadInputError(f"an optional metadata field of the TABLE_MAP event of {info.schema}.{info.table} "
                                "runs past its end")
    return info


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
        elif t in FIXED_SIZES:
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
