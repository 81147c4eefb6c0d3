"""Raw row images of ROWS events: where each value's bytes are, without decoding rows.

Conflict keys (`binreplay.schedule.keys`) need a few column values of every row image,
for every row of every transaction, so this must be fast in pure Python. A
`RowWalker` compiles, once per (present-columns bitmap, wanted columns), a
small Python function that steps over a row image: it slices out the wanted
values and only skips the others (fixed-size runs of NOT NULL columns become
one addition). How each value sits in an image is column_types.py's; the table's
columns come from its TABLE_MAP (table_map.py).

Values come back as the raw bytes of the row format (no length prefix), None
for SQL NULL, or `ABSENT` when the column is not in that image at all
(binlog_row_image=MINIMAL/NOBLOB). Anything we cannot walk with certainty
raises `RowFormatError`; callers then fall back to a coarser key.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from binreplay.binlog import constants as C
from binreplay.binlog.column_types import ColumnLayout, RowFormatError, column_layout
from binreplay.binlog.events import decompress_mariadb, read_packed_int
from binreplay.binlog.header import table_id_len
from binreplay.binlog.table_map import TableMap
from binreplay.errors import BadInputError

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


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
"""Placeholder for a column that is not part of a row image (MINIMAL/NOBLOB images)."""


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
    return int.from_bytes(body[0:table_id_len(post_header_len)], "little")


def parse_rows_event(type_code: int, body: bytes, post_header_len: int) -> RowsEvent:
    """Parse a rows event body (header and checksum removed) down to its row images."""
    try:
        return _parse_rows_event(type_code, body, post_header_len)
    except (IndexError, BadInputError, zlib.error, ValueError) as exc:
        raise RowFormatError(f"malformed rows event: {exc}") from None


def _parse_rows_event(type_code: int, body: bytes, post_header_len: int) -> RowsEvent:
    kind = rows_kind(type_code)
    pos = table_id_len(post_header_len)
    table_id = int.from_bytes(body[0:pos], "little")
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
    if pos > len(body):
        raise RowFormatError(f"the rows event ends inside its header ({pos} > {len(body)} bytes)")
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
        columns = (1 << ev.column_count) - 1
        if end and not (ev.present & columns or (ev.present_after or 0) & columns):
            # An image of no column takes no byte: walking one would never reach the end.
            raise RowFormatError("row images with no column present")
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
    return cast(Walker, namespace["walk"])


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
