"""TABLE_MAP optional metadata (binlog_row_metadata=MINIMAL/FULL): column names, signedness,
character sets, ENUM/SET values and the primary key, as the source wrote them.

Each field is a TLV: type byte, packed length, value. Per-column lists cover only the
columns of one class, in column order: numeric columns for signedness, character
columns for charsets, ENUM/SET columns for theirs. Which types belong to a class was
checked against what MariaDB 10.11 writes (YEAR counts as numeric and is flagged
unsigned; MariaDB counts GEOMETRY as a character column, MySQL does not).
"""

from __future__ import annotations

from dataclasses import dataclass

from binreplay.binlog import column_types as T
from binreplay.binlog.events import read_packed_int
from binreplay.binlog.table_map import TableMap

SIGNEDNESS = 1
DEFAULT_CHARSET = 2
COLUMN_CHARSET = 3
COLUMN_NAME = 4
SET_STR_VALUE = 5
ENUM_STR_VALUE = 6
GEOMETRY_TYPE = 7
SIMPLE_PRIMARY_KEY = 8
PRIMARY_KEY_WITH_PREFIX = 9
ENUM_AND_SET_DEFAULT_CHARSET = 10
ENUM_AND_SET_COLUMN_CHARSET = 11
COLUMN_VISIBILITY = 12

_NUMERIC = frozenset({T.T_TINY, T.T_SHORT, T.T_INT24, T.T_LONG, T.T_LONGLONG, T.T_NEWDECIMAL, T.T_FLOAT,
                      T.T_DOUBLE, T.T_YEAR, T.T_DECIMAL})
_CHARACTER = frozenset({T.T_STRING, T.T_VAR_STRING, T.T_VARCHAR, T.T_BLOB, T.T_TINY_BLOB, T.T_MEDIUM_BLOB,
                        T.T_LONG_BLOB, T.T_VARCHAR_COMPRESSED, T.T_BLOB_COMPRESSED})
_ENUM_SET = frozenset({T.T_ENUM, T.T_SET})


@dataclass(frozen=True)
class TableMeta:
    """What the optional metadata said; None = not logged (e.g. names without FULL)."""

    names: tuple[str, ...] | None = None
    unsigned: tuple[bool, ...] | None = None
    collations: tuple[int | None, ...] | None = None   # per column; None for non-character columns
    primary_key: tuple[int, ...] | None = None          # () = logged, and the table has none


def is_character(type_code: int, flavor: str) -> bool:
    return type_code in _CHARACTER or (type_code == T.T_GEOMETRY and flavor == "mariadb")


def parse_table_meta(tmap: TableMap, flavor: str) -> TableMeta:
    buf = tmap.optional
    types = tmap.types
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(buf):
        kind = buf[pos]
        length, pos = read_packed_int(buf, pos + 1)
        fields[kind] = buf[pos:pos + length]
        pos += length
    if not fields:
        return TableMeta()
    n = len(types)
    unsigned = None
    if SIGNEDNESS in fields:
        bits = fields[SIGNEDNESS]
        numeric = [i for i, t in enumerate(types) if t in _NUMERIC]
        flags = [False] * n
        for j, i in enumerate(numeric):
            flags[i] = bool(bits[j // 8] >> (7 - j % 8) & 1) if j // 8 < len(bits) else False
        unsigned = tuple(flags)
    char_cols = [i for i, t in enumerate(types) if is_character(t, flavor)]
    enum_cols = [i for i, t in enumerate(types) if t in _ENUM_SET]
    collations: list[int | None] = [None] * n
    known = False
    for default_kind, column_kind, cols in ((DEFAULT_CHARSET, COLUMN_CHARSET, char_cols),
                                            (ENUM_AND_SET_DEFAULT_CHARSET, ENUM_AND_SET_COLUMN_CHARSET, enum_cols)):
        if default_kind in fields:
            values = _packed_ints(fields[default_kind])
            per = [values[0]] * len(cols)
            for k in range(1, len(values) - 1, 2):
                if values[k] < len(per):
                    per[values[k]] = values[k + 1]
        elif column_kind in fields:
            per = _packed_ints(fields[column_kind])
        else:
            continue
        known = True
        for i, c in zip(cols, per):
            collations[i] = c
    names = None
    if COLUMN_NAME in fields:
        names = tuple(_strings(fields[COLUMN_NAME]))
        if len(names) != n:
            names = None
    pk = None
    if SIMPLE_PRIMARY_KEY in fields:
        pk = tuple(_packed_ints(fields[SIMPLE_PRIMARY_KEY]))
    elif PRIMARY_KEY_WITH_PREFIX in fields:
        pk = tuple(_packed_ints(fields[PRIMARY_KEY_WITH_PREFIX])[0::2])
    elif names is not None:
        pk = ()  # FULL metadata logs the key whenever there is one
    return TableMeta(names, unsigned, tuple(collations) if known else None, pk)


def _packed_ints(buf: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        v, pos = read_packed_int(buf, pos)
        out.append(v)
    return out


def _strings(buf: bytes) -> list[str]:
    out, pos = [], 0
    while pos < len(buf):
        length, pos = read_packed_int(buf, pos)
        out.append(buf[pos:pos + length].decode("utf-8", "surrogateescape"))
        pos += length
    return out
