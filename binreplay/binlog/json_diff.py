"""MySQL partial JSON updates (PARTIAL_UPDATE_ROWS events) for `--apply sql`.

With `binlog_row_value_options=PARTIAL_JSON` MySQL logs an UPDATE of a JSON column made by
JSON_SET/JSON_REPLACE/JSON_REMOVE as a list of changes instead of the new document. The
event's header and before images are those of an UPDATE_ROWS v2 event; each after image
starts with a packed `value_options` integer and, when it has the PARTIAL_JSON_UPDATES bit,
one bit per JSON column of the table (least significant bit first) saying whose value is a
diff. A diff value sits in the column's ordinary 4-byte-length BLOB slot and is a sequence
of (operation byte: 0 REPLACE, 1 INSERT, 2 REMOVE; packed-length path text; for REPLACE and
INSERT a packed-length MySQL binary JSON value), as MySQL's json_diff.h describes it.

When the before image holds the document (binlog_row_image=FULL), the new document is
computed here, so the target stores exactly the text a full after image would have given.
Otherwise (MINIMAL) the diff becomes JSON_REPLACE/JSON_INSERT/JSON_ARRAY_INSERT/JSON_REMOVE
calls on the column: the same document, in the text form the target's JSON functions write.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from binreplay.binlog import column_types as T
from binreplay.binlog import rows as R
from binreplay.binlog.column_types import RowFormatError
from binreplay.binlog.events import read_packed_int
from binreplay.binlog.mysql_json import binary_json_to_text
from binreplay.errors import BadInputError, UnsupportedError

REPLACE, INSERT, REMOVE = 0, 1, 2
_OPERATIONS = {REPLACE: "REPLACE", INSERT: "INSERT", REMOVE: "REMOVE"}
PARTIAL_JSON_UPDATES = 1          # the value_options bit


@dataclass(frozen=True)
class JsonDiff:
    operation: int               # REPLACE, INSERT or REMOVE
    path: str                    # a MySQL JSON path naming one location, e.g. '$.a[2]'
    value: bytes | None          # MySQL binary JSON; None for REMOVE

    def __str__(self) -> str:
        shown = "" if self.value is None else " " + binary_json_to_text(self.value)
        return f"{_OPERATIONS[self.operation]} {self.path}{shown}"


@dataclass(frozen=True)
class PartialRow:
    """One row of a partial update: raw values as RowWalker gives them; in `after`, the
    columns in `partial` hold their encoded diff instead of a document."""

    before: tuple
    after: tuple
    partial: frozenset[int]


def partial_rows(walker: R.RowWalker, rows: R.RowsEvent) -> list[PartialRow]:
    """The rows of a PARTIAL_UPDATE_ROWS event parsed (header only) as an UPDATE_ROWS v2 event."""
    tmap = walker.table_map
    if rows.column_count != tmap.column_count or rows.present_after is None:
        raise RowFormatError("partial update and TABLE_MAP disagree on the columns")
    every = tuple(range(tmap.column_count))
    walk_before = R.compile_walker(walker.layout, tmap.nullable, rows.present, every)
    walk_after = R.compile_walker(walker.layout, tmap.nullable, rows.present_after, every)
    json_columns = [i for i, t in enumerate(tmap.types) if t == T.T_JSON]
    bits_len = (len(json_columns) + 7) // 8
    data, pos, out = rows.data, 0, []
    try:
        while pos < len(data):
            pos, before = walk_before(data, pos)
            options, pos = read_packed_int(data, pos)
            partial: frozenset[int] = frozenset()
            if options & PARTIAL_JSON_UPDATES:
                bits = int.from_bytes(data[pos:pos + bits_len], "little")
                pos += bits_len
                partial = frozenset(c for k, c in enumerate(json_columns) if bits >> k & 1)
            pos, after = walk_after(data, pos)
            out.append(PartialRow(before, after, partial))
    except (IndexError, BadInputError):
        raise RowFormatError("partial update row image runs past the end of the event") from None
    if pos != len(data):
        raise RowFormatError("partial update row images do not end where the event ends")
    return out


def parse_diffs(raw: bytes) -> list[JsonDiff]:
    out, pos = [], 0
    try:
        while pos < len(raw):
            op = raw[pos]
            if op not in _OPERATIONS:
                raise BadInputError(f"unknown partial JSON update operation {op}")
            length, pos = read_packed_int(raw, pos + 1)
            path = raw[pos:pos + length].decode("utf-8")
            pos += length
            value = None
            if op != REMOVE:
                length, pos = read_packed_int(raw, pos)
                value = bytes(raw[pos:pos + length])
                if len(value) != length:
                    raise IndexError
                pos += length
            out.append(JsonDiff(op, path, value))
    except (IndexError, UnicodeDecodeError):
        raise BadInputError("malformed partial JSON update (truncated diff or bad path)") from None
    return out


# --- computing the new document ------------------------------------------------------------

class _Number(str):
    """A JSON number kept as its text (no float rounding)."""


class _Object(list):
    """A JSON object as its (key, value) members, in document order."""


def _load(text: str):
    return json.loads(text, object_pairs_hook=_Object, parse_int=_Number, parse_float=_Number,
                      parse_constant=_Number)


def _dump(v) -> str:
    """The text form mysql_json.py writes (MySQL's): ', ' and ': ' separators."""
    if isinstance(v, _Object):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_dump(x)}" for k, x in v) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_dump(x) for x in v) + "]"
    if isinstance(v, _Number):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


_LEG = re.compile(r'\s*(?:\.\s*(?:(?P<name>[^.\[\s"]+)|(?P<quoted>"))|\[\s*(?:(?P<index>\d+)|'
                  r'last(?:\s*-\s*(?P<back>\d+))?)\s*\])')


def parse_path(path: str) -> list:
    """'$.a."b c"[2][last-1]' -> ['a', 'b c', 2, ('last', 1)]. Wildcards never occur in a diff."""
    text = path.strip()
    if not text.startswith("$"):
        raise BadInputError(f"partial JSON update path {path!r} does not start with $")
    legs, pos = [], 1
    while pos < len(text):
        m = _LEG.match(text, pos)
        if m is None:
            raise UnsupportedError(f"partial JSON update path {path!r} cannot be applied with --apply sql")
        if m.group("name") is not None:
            legs.append(m.group("name"))
            pos = m.end()
        elif m.group("quoted") is not None:
            key, pos = json.JSONDecoder().raw_decode(text, m.start("quoted"))
            legs.append(key)
        elif m.group("index") is not None:
            legs.append(int(m.group("index")))
            pos = m.end()
        else:
            legs.append(("last", int(m.group("back") or 0)))
            pos = m.end()
    return legs


def _index(leg, array: list) -> int:
    return len(array) - 1 - leg[1] if isinstance(leg, tuple) else leg


def _child(v, leg, path: str):
    if isinstance(leg, str):
        if isinstance(v, _Object):
            for k, x in v:
                if k == leg:
                    return x
    elif isinstance(v, list) and not isinstance(v, _Object):
        i = _index(leg, v)
        if 0 <= i < len(v):
            return v[i]
    elif _index(leg, [v]) == 0:
        return v   # MySQL auto-wraps: a non-array value is its own element 0
    raise BadInputError(f"partial JSON update path {path} is not in the before image's document")


def _key_order(key: str) -> tuple[int, bytes]:
    """MySQL keeps object members sorted by key length, then key bytes."""
    b = key.encode("utf-8")
    return len(b), b


def _apply_one(doc, d: JsonDiff):
    legs = parse_path(d.path)
    value = None if d.value is None else _load(binary_json_to_text(d.value))
    if not legs:
        if d.operation != REPLACE:
            raise BadInputError(f"partial JSON update {_OPERATIONS[d.operation]} of the whole document")
        return value
    parent = doc
    for leg in legs[:-1]:
        parent = _child(parent, leg, d.path)
    leg = legs[-1]
    if isinstance(leg, str) and isinstance(parent, _Object):
        at = next((i for i, (k, _) in enumerate(parent) if k == leg), None)
        if d.operation == INSERT and at is None:
            parent.append((leg, value))
            parent.sort(key=lambda kv: _key_order(kv[0]))
            return doc
        if at is not None and d.operation == REPLACE:
            parent[at] = (leg, value)
            return doc
        if at is not None and d.operation == REMOVE:
            del parent[at]
            return doc
    elif not isinstance(leg, str) and isinstance(parent, list) and not isinstance(parent, _Object):
        i = _index(leg, parent)
        if d.operation == INSERT and i >= 0:
            parent.insert(min(i, len(parent)), value)
            return doc
        if 0 <= i < len(parent) and d.operation == REPLACE:
            parent[i] = value
            return doc
        if 0 <= i < len(parent) and d.operation == REMOVE:
            del parent[i]
            return doc
    elif d.operation == REPLACE and _index(leg, [parent]) == 0:   # auto-wrapped: the value itself
        return _apply_one(doc, JsonDiff(REPLACE, _parent_path(d.path), d.value))
    raise BadInputError(f"partial JSON update {d} does not fit the before image's document")


def _parent_path(path: str) -> str:
    return path[:path.rstrip().rindex("[")]


def apply_diffs(document: str, diffs: list[JsonDiff]) -> str:
    """The JSON text of `document` (mysql_json's form) after the diffs, in order."""
    doc = _load(document)
    for d in diffs:
        doc = _apply_one(doc, d)
    return _dump(doc)


# --- SQL ------------------------------------------------------------------------------------

def json_literal(text: str, flavor: str) -> str:
    """JSON text as a value of a JSON column (MySQL needs a JSON-typed value, MariaDB stores text)."""
    lit = f"_utf8mb4 X'{text.encode('utf-8').hex()}'"
    return f"CAST({lit} AS JSON)" if flavor == "mysql" else lit


def _json_argument(text: str, flavor: str) -> str:
    """A value argument of JSON_REPLACE & co. that the function inserts as JSON, not as a string."""
    lit = f"_utf8mb4 X'{text.encode('utf-8').hex()}'"
    return f"CAST({lit} AS JSON)" if flavor == "mysql" else f"JSON_EXTRACT({lit}, '$')"


def diff_expression(column: str, diffs: list[JsonDiff], flavor: str) -> str:
    """The SQL expression that applies the diffs to the column's current value on the target."""
    expr = column
    for d in diffs:
        path = f"_utf8mb4 X'{d.path.encode('utf-8').hex()}'"
        legs = parse_path(d.path)   # validates it, and tells an array position from a member
        if d.operation == REMOVE:
            expr = f"JSON_REMOVE({expr}, {path})"
            continue
        value = _json_argument(binary_json_to_text(d.value or b""), flavor)
        if not legs:
            expr = value if d.operation == REPLACE else expr
        elif d.operation == REPLACE:
            expr = f"JSON_REPLACE({expr}, {path}, {value})"
        elif isinstance(legs[-1], str):
            expr = f"JSON_INSERT({expr}, {path}, {value})"
        else:
            expr = f"JSON_ARRAY_INSERT({expr}, {path}, {value})"
    return expr


def partial_update_sets(columns, row: PartialRow, flavor: str) -> list[str]:
    """`name=value` assignments of a partial update's after image. `columns`: the writable
    columns (with .index, .name (quoted) and .render, as sql_apply's plans have them)."""
    sets = []
    for c in columns:
        v = row.after[c.index]
        if v is R.ABSENT:
            continue
        if c.index not in row.partial:
            sets.append(f"{c.name}={'NULL' if v is None else c.render(v)}")
            continue
        diffs = parse_diffs(v)
        old = row.before[c.index]
        if old is None:
            raise BadInputError(f"partial JSON update of {c.name}, which is NULL in the before image")
        if old is R.ABSENT:
            sets.append(f"{c.name}={diff_expression(c.name, diffs, flavor)}")
        else:
            sets.append(f"{c.name}={json_literal(apply_diffs(binary_json_to_text(old), diffs), flavor)}")
    return sets
