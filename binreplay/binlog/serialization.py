"""Reader for MySQL's `mysql::serialization` messages (MySQL 8.3+; GTID_TAGGED events).

A message is: format version, total size, last non-ignorable field id (all
variable-length unsigned integers), then the fields that are present, each
as its id followed by its value. Field ids count up from 0 in declaration
order; a writer may leave optional fields out. Newer servers append fields,
so a reader takes the fields it knows and skips the rest by the total size,
unless the writer marked one of the unknown fields non-ignorable.

Integers are variable-length: the number of trailing one bits of the first
byte, plus one, is the number of bytes (1..9); the value follows those bits
(little-endian). Signed values are zigzag-mapped first (the sign is the lowest
bit). Strings and byte arrays use that integer encoding for their length and
for each array element.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from binreplay.errors import BadInputError, UnsupportedError

FORMAT_VERSION = 1

Value = int | bytes


class SerializationError(BadInputError):
    """The bytes are not a well-formed message (truncated or inconsistent)."""


def read_uint(buf: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """Variable-length unsigned integer at `pos` -> (value, position after it)."""
    end = len(buf) if end is None else end
    if pos >= end:
        raise SerializationError("message ends inside an integer")
    first = buf[pos]
    size = 1
    while size < 9 and first & (1 << (size - 1)):  # count the trailing ones
        size += 1
    if pos + size > end:
        raise SerializationError("message ends inside an integer")
    if size == 1:
        return first >> 1, pos + 1
    rest = int.from_bytes(buf[pos + 1:pos + size], "little")
    if size == 9:  # the first byte is all length bits; the next 8 bytes are the value
        return rest, pos + size
    return (first >> size) | (rest << (8 - size)), pos + size


def read_sint(buf: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """Variable-length signed integer (zigzag: sign in the lowest bit)."""
    raw, pos = read_uint(buf, pos, end)
    return (-(raw >> 1) - 1 if raw & 1 else raw >> 1), pos


# A field decoder reads one value at a position (never past `end`) -> (value, new position).
FieldReader = Callable[[bytes, int, int], tuple[Value, int]]
IntReader = Callable[[bytes, int, int], tuple[int, int]]


def integer(bits: int, *, signed: bool = False) -> IntReader:
    """A variable-length integer field of a C++ type `bits` wide; a wider value is corrupt data."""
    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    read_value = read_sint if signed else read_uint

    def read(buf: bytes, pos: int, end: int) -> tuple[int, int]:
        value, pos = read_value(buf, pos, end)
        if not low <= value < high:
            raise SerializationError(f"value {value} does not fit {'a signed' if signed else 'an unsigned'} "
                                     f"{bits}-bit field")
        return value, pos
    return read


def uint(bits: int) -> IntReader:
    return integer(bits)


def sint(bits: int) -> IntReader:
    return integer(bits, signed=True)


def string(max_len: int) -> FieldReader:
    """A length, then that many bytes; `max_len` is the bound the field was declared with."""
    def read(buf: bytes, pos: int, end: int) -> tuple[Value, int]:
        length, pos = read_uint(buf, pos, end)
        if length > max_len or pos + length > end:
            raise SerializationError(f"string of {length} bytes does not fit the field or the message")
        return bytes(buf[pos:pos + length]), pos + length
    return read


def byte_array(count: int) -> FieldReader:
    """A fixed-size array of bytes: no length, each element a variable-length integer (1-2 bytes)."""
    element = uint(8)

    def read(buf: bytes, pos: int, end: int) -> tuple[Value, int]:
        out = bytearray()
        for _ in range(count):
            value, pos = element(buf, pos, end)
            out.append(value)
        return bytes(out), pos
    return read


@dataclass(frozen=True)
class Message:
    fields: dict[str, Value]  # the known fields present in the message
    size: int                 # bytes the message occupies, unknown fields included
    skipped: int              # bytes of fields this reader does not know

    def get_int(self, name: str, default: int | None = None) -> int | None:
        value = self.fields.get(name, default)
        assert value is None or isinstance(value, int), name
        return value

    def get_bytes(self, name: str) -> bytes | None:
        value = self.fields.get(name)
        assert value is None or isinstance(value, bytes), name
        return value


def read_message(buf: bytes, layout: Sequence[tuple[str, FieldReader]], what: str) -> Message:
    """Decode a top-level message whose field i is `layout[i]`; missing optional fields are absent."""
    try:
        version, pos = read_uint(buf, 0)
        if version != FORMAT_VERSION:
            raise UnsupportedError(f"{what} uses serialization format {version}; binreplay reads format "
                                   f"{FORMAT_VERSION} (written by MySQL 8.3 and later)")
        size, pos = read_uint(buf, pos)
        if size > len(buf):
            raise SerializationError(f"message of {size} bytes in {len(buf)} bytes of event data")
        last_non_ignorable, pos = read_uint(buf, pos, size)
        if last_non_ignorable > len(layout):
            # The writer says a field this reader does not know changes the meaning: like the
            # server, refuse rather than guess.
            raise UnsupportedError(f"{what} has field {last_non_ignorable - 1} that must be understood, "
                                   f"but binreplay knows fields 0-{len(layout) - 1} only (written by a newer "
                                   "MySQL?)")
        fields: dict[str, Value] = {}
        for field_id, (name, reader) in enumerate(layout):
            if pos >= size:
                break
            found, after_id = read_uint(buf, pos, size)
            if found != field_id:
                continue  # this field was left out (or an unknown one follows)
            fields[name], pos = reader(buf, after_id, size)
        return Message(fields, size, size - pos)
    except SerializationError as exc:
        raise SerializationError(f"corrupt {what}: {exc}") from None
