"""MySQL's binary JSON (the JSON column format in MySQL row images) -> JSON text.

Written from the format description in MySQL's json_binary.h: a type byte, then
objects/arrays as (count, size, key entries, value entries, keys, values) with 2-byte
offsets (small) or 4-byte (large), small scalars inlined in the value entries, strings
with a 7-bit variable-length prefix, and "opaque" values that carry a MySQL field type.

Text is what the server's CAST(... AS JSON) reads back to the same document, with two
documented limits: opaque DECIMAL/temporal values come back as their JSON number or
string form (same text, but JSON_TYPE() then says DOUBLE/STRING), and other opaque
values (binary strings) as MySQL prints them ("base64:typeN:...").
"""

from __future__ import annotations

import base64
import json
import struct

from binreplay.binlog.column_types import decode_decimal
from binreplay.errors import BadInputError

SMALL_OBJECT, LARGE_OBJECT, SMALL_ARRAY, LARGE_ARRAY = 0, 1, 2, 3
LITERAL, INT16, UINT16, INT32, UINT32, INT64, UINT64, DOUBLE, STRING, OPAQUE = 4, 5, 6, 7, 8, 9, 10, 11, 12, 15

_INTEGERS = {INT16: "<h", UINT16: "<H", INT32: "<i", UINT32: "<I", INT64: "<q", UINT64: "<Q"}
_FIELD_NEWDECIMAL, _FIELD_DATE, _FIELD_TIME, _FIELD_DATETIME, _FIELD_TIMESTAMP = 246, 10, 11, 12, 7


MAX_DEPTH = 100   # the server's own limit on a JSON document's nesting


def binary_json_to_text(data: bytes) -> str:
    if not data:
        return "null"  # an empty image value is the JSON null MySQL writes for NULL-like inserts
    try:
        # A value takes at least a byte of the document: more values than bytes means offsets that
        # point back (a cycle) or share a value, which would make the text grow without bound.
        return _value(data[0], data, 1, [len(data)], 0)
    except (IndexError, struct.error, ValueError) as exc:
        raise BadInputError(f"malformed MySQL binary JSON value: {exc}") from None


def _value(kind: int, buf: bytes, pos: int, budget: list[int], depth: int) -> str:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise ValueError("more values or deeper nesting than the document can hold")
    if kind in (SMALL_OBJECT, LARGE_OBJECT, SMALL_ARRAY, LARGE_ARRAY):
        return _container(kind, buf, pos, budget, depth + 1)
    if kind == LITERAL:
        return {0: "null", 1: "true", 2: "false"}[buf[pos]]
    if kind in _INTEGERS:
        return str(struct.unpack_from(_INTEGERS[kind], buf, pos)[0])
    if kind == DOUBLE:
        return _double(struct.unpack_from("<d", buf, pos)[0])
    if kind == STRING:
        length, pos = _varlen(buf, pos)
        return json.dumps(buf[pos:pos + length].decode("utf-8"), ensure_ascii=False)
    if kind == OPAQUE:
        return _opaque(buf, pos)
    raise ValueError(f"unknown JSON value type {kind}")


def _double(v: float) -> str:
    text = repr(v)
    return text if any(c in text for c in ".en") else text + ".0"


def _container(kind: int, buf: bytes, start: int, budget: list[int], depth: int) -> str:
    large = kind in (LARGE_OBJECT, LARGE_ARRAY)
    is_object = kind in (SMALL_OBJECT, LARGE_OBJECT)
    fmt, width = ("<I", 4) if large else ("<H", 2)
    count = struct.unpack_from(fmt, buf, start)[0]
    pos = start + 2 * width
    keys = []
    if is_object:
        for _ in range(count):
            offset = struct.unpack_from(fmt, buf, pos)[0]
            length = struct.unpack_from("<H", buf, pos + width)[0]
            keys.append(json.dumps(buf[start + offset:start + offset + length].decode("utf-8"), ensure_ascii=False))
            pos += width + 2
    values = []
    for _ in range(count):
        vkind = buf[pos]
        if vkind in (LITERAL, INT16, UINT16) or (large and vkind in (INT32, UINT32)):
            values.append(_value(vkind, buf, pos + 1, budget, depth))  # inlined in the entry
        else:
            offset = struct.unpack_from(fmt, buf, pos + 1)[0]
            values.append(_value(vkind, buf, start + offset, budget, depth))
        pos += 1 + width
    if is_object:
        return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, values)) + "}"
    return "[" + ", ".join(values) + "]"


def _varlen(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(5):
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    raise ValueError("JSON length prefix longer than 5 bytes")


def _opaque(buf: bytes, pos: int) -> str:
    field_type = buf[pos]
    length, pos = _varlen(buf, pos + 1)
    data = buf[pos:pos + length]
    if field_type == _FIELD_NEWDECIMAL:
        return decode_decimal(data[0], data[1], data[2:])
    if field_type in (_FIELD_DATE, _FIELD_TIME, _FIELD_DATETIME, _FIELD_TIMESTAMP):
        return json.dumps(_packed_temporal(field_type, struct.unpack("<q", data[:8])[0]))
    return json.dumps(f"base64:type{field_type}:{base64.b64encode(data).decode()}")


def _packed_temporal(field_type: int, packed: int) -> str:
    """MySQL's packed longlong temporal (int part << 24 | microseconds) as MySQL prints it in JSON."""
    sign = "-" if packed < 0 else ""
    packed = abs(packed)
    intpart, usec = packed >> 24, packed & 0xFFFFFF
    if field_type == _FIELD_TIME:
        hms = intpart
        return f"{sign}{hms >> 12 & 0x3FF:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}.{usec:06d}"
    ymd, hms = intpart >> 17, intpart & 0x1FFFF
    ym = ymd >> 5
    date = f"{ym // 13:04d}-{ym % 13:02d}-{ymd & 31:02d}"
    if field_type == _FIELD_DATE:
        return date
    return f"{date} {hms >> 12:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}.{usec:06d}"
