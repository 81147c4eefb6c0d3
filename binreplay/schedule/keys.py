"""Conflict keys of a row-based transaction, for the parallel scheduler.

Two transactions may run concurrently only if their key sets do not conflict:
an exclusive key conflicts with the same key in any mode, a shared key only
with the same key held exclusively.

Keys (mode "row"):
  ("grp", group)                          exclusive: a table linked to others by foreign keys
                                          (cascades change rows the binlog does not show)
  ("tbl", schema, table)                  shared when rows are keyed; exclusive when the table
                                          cannot be keyed (no PK/unique, unknown, unparsable)
  ("idx", schema, table, index)           shared next to each row key; exclusive when an image
                                          lacks the index's value (MINIMAL image) or the value
                                          cannot be normalized safely
  ("row", schema, table, index, values)   exclusive: one primary/unique key value

Key values compare like the server compares them, or coarser (coarser only
costs parallelism; finer would let two conflicting transactions overlap): each
column's row-format bytes become its key value in key_values.py, which answers
UNSAFE (-> the index-wide key) where it cannot reproduce the collation's equality.
A column absent from an UPDATE's after image (MINIMAL/NOBLOB) was not changed, so
its before-image value stands in for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

from binreplay.binlog import constants as C
from binreplay.binlog import rows as R
from binreplay.binlog.column_types import RowFormatError
from binreplay.binlog.header import body_of, post_header_len
from binreplay.binlog.table_map import TableMap, layout_key, parse_table_map, table_map_names
from binreplay.errors import BadInputError
from binreplay.model import FormatDescription, TableMapInfo, Transaction
from binreplay.schedule.key_values import UNSAFE, Normalizer, Unkeyable, normalizer
from binreplay.server.tables import SchemaCache, TableInfo, column_mismatch

Key = tuple
KeySet = dict[Key, bool]  # key -> exclusive?

MODES = ("row", "table")

ABSENT = R.ABSENT

# A transaction that changes this many row events' worth of one table (about 8 KiB each)
# takes the table's exclusive key instead of one key per row: coarser, so still safe, and
# bulk transactions would otherwise spend more time in key extraction than the target
# spends applying them, for parallelism they rarely have.
BULK_ROWS_EVENTS = 16


def transaction_keys(trx: Transaction, schema: SchemaCache, mode: str = "row") -> KeySet:
    """The conflict keys of a transaction: key -> exclusive. Empty without row events."""
    if mode not in MODES:
        raise ValueError(f"unknown dependency mode {mode!r}")
    keys: KeySet = {}
    plans: dict[int, _TablePlan | None] = {}   # table id -> plan; None: keyed as a whole already
    fde = trx.fde
    has_rows = False
    rows_per_table: dict[int, int] = {}
    has_crc = fde.has_crc32
    for i, span in enumerate(trx.spans):
        t = span[0]
        if t == C.TABLE_MAP_EVENT:
            table_id, plan = _map_table(body_of(trx.raw(span), has_crc), trx.infos.get(i), fde, schema, mode, keys)
            plans[table_id] = plan
        elif t in C.ROWS_EVENTS:
            has_rows = True
            body = body_of(trx.raw(span), has_crc)
            phl = post_header_len(fde, t)
            table_id = R.rows_table_id(body, phl)
            seen = rows_per_table[table_id] = rows_per_table.get(table_id, 0) + 1
            plan = plans.get(table_id)
            if seen == BULK_ROWS_EVENTS and plan is not None:
                keys[plan.table_key] = True
                plans[table_id] = None
                continue
            _rows_keys(t, body, phl, table_id, span[1], plans, keys)
    return keys if has_rows else {}


def table_keys(trx: Transaction, schema: SchemaCache) -> frozenset[Key]:
    """The keys "table" mode gives a row transaction, from its tables (`Transaction.tables`, named as
    on the target) instead of its events: what schedule/partition.py cuts batches by, per transaction."""
    return frozenset(_table_key(schema.table(s, t), s, t) for s, t in trx.tables)


def _table_key(info: TableInfo | None, schema_name: str, table: str) -> Key:
    """A table's key, or its foreign-key group's, which stands for every table of the group."""
    if info is not None and info.fk_group:
        return ("grp", info.fk_group)
    return ("tbl", info.schema, info.name) if info is not None else ("tbl", schema_name, table)


# --- per event -------------------------------------------------------------------

def _map_table(body: bytes, names: object, fde: FormatDescription, schema: SchemaCache, mode: str,
               keys: KeySet) -> tuple[int, _TablePlan | None]:
    phl = post_header_len(fde, C.TABLE_MAP_EVENT)
    if not isinstance(names, TableMapInfo):
        names = table_map_names(body, phl)[0]
    info = schema.table(names.schema, names.table)
    table_key = _table_key(info, names.schema, names.table)
    if info is not None and info.fk_group:
        keys[table_key] = True   # the group stands for the table: no row keys
        return names.table_id, None
    if info is None or mode == "table":
        keys[table_key] = True
        return names.table_id, None
    try:
        plan = _cached_plan(body, phl, info, schema)
    except (Unkeyable, RowFormatError):
        keys[table_key] = True
        return names.table_id, None
    keys.setdefault(table_key, False)
    return names.table_id, plan


def _rows_keys(type_code: int, body: bytes, phl: int, table_id: int, position: int,
               plans: dict[int, _TablePlan | None], keys: KeySet) -> None:
    if table_id not in plans:
        raise BadInputError(f"{C.event_name(type_code)} event at position {position} refers to table id "
                            f"{table_id}, which no TABLE_MAP event of its transaction maps")
    plan = plans[table_id]
    if plan is None:
        return
    try:
        rows = R.parse_rows_event(type_code, body, phl)
        images = plan.walker.images(rows, plan.wanted)
    except RowFormatError:
        keys[plan.table_key] = True
        plans[table_id] = None
        return
    if rows.kind == R.UPDATE:
        _update_keys(plan, images, rows.present, rows.present_after or 0, keys)
    else:
        for image in images:
            plan.image_keys(image, keys)


def _update_keys(plan: _TablePlan, images: list[tuple], present: int, present_after: int, keys: KeySet) -> None:
    # A column missing from the after image (MINIMAL/NOBLOB) was not changed by the
    # update: it still has its before-image value, which we may use for the key.
    fill = any(not present_after >> c & 1 and present >> c & 1 for c in plan.wanted)
    for i in range(0, len(images), 2):
        before, after = images[i], images[i + 1]
        plan.image_keys(before, keys)
        if fill:
            after = tuple(b if a is R.ABSENT else a for a, b in zip(after, before))
        if after != before:
            plan.image_keys(after, keys)


# --- per table -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _IndexPlan:
    name: str
    slots: tuple[int, ...]                      # positions in the walker's value tuples
    normalizers: tuple[Normalizer | None, ...]  # None: the raw bytes are the key value
    row_prefix: tuple                           # ("row", schema, table, index)
    idx_key: tuple                              # ("idx", schema, table, index)


class _TablePlan:
    """Everything needed to key one table's row images, built once per TABLE_MAP layout."""

    __slots__ = ("table_key", "walker", "wanted", "indexes", "_single", "_multi")

    def __init__(self, table_key: tuple, walker: R.RowWalker, wanted: tuple[int, ...],
                 indexes: tuple[_IndexPlan, ...]) -> None:
        self.table_key = table_key
        self.walker = walker
        self.wanted = wanted          # columns any index needs, in row order
        self.indexes = indexes
        # One-column indexes (most of them) take a path free of per-image list building.
        self._single = tuple((ix.slots[0], ix.normalizers[0], ix.row_prefix, ix.idx_key)
                             for ix in indexes if len(ix.slots) == 1)
        self._multi = tuple((itemgetter(*ix.slots), ix.normalizers, ix.row_prefix, ix.idx_key)
                            for ix in indexes if len(ix.slots) > 1)

    def image_keys(self, image: tuple, keys: KeySet) -> None:
        """Add the keys of one row image."""
        named = False
        for slot, normalize, row_prefix, idx_key in self._single:
            value = image[slot]
            if value is None:
                continue  # NULL never conflicts in a unique index (PRIMARY has no NULLs)
            named = True
            if value is not ABSENT:
                if normalize is not None:
                    value = normalize(value)
                if value is not UNSAFE:
                    keys[(*row_prefix, (value,))] = True
                    if idx_key not in keys:
                        keys[idx_key] = False
                    continue
            keys[idx_key] = True
        for getter, normalizers, row_prefix, idx_key in self._multi:
            values = _index_values(getter(image), normalizers)
            if values is None:
                continue
            named = True
            if values is UNSAFE:
                keys[idx_key] = True
            else:
                keys[(*row_prefix, values)] = True
                if idx_key not in keys:
                    keys[idx_key] = False
        if not named:
            # Every unique index is NULL here (no primary key): nothing names this row,
            # so only the whole table can stand for it.
            keys[self.table_key] = True


def _index_values(raw: tuple, normalizers: tuple[Normalizer | None, ...]) -> tuple | object | None:
    """A multi-column index's key value; None if a part is NULL, UNSAFE if one is unknown."""
    if None in raw:
        return None
    if ABSENT in raw:
        return UNSAFE
    values = tuple([v if n is None else n(v) for v, n in zip(raw, normalizers)])
    return UNSAFE if UNSAFE in values else values


def _cached_plan(body: bytes, post_header_len: int, info: TableInfo, schema: SchemaCache) -> _TablePlan:
    """Plans are cached per TABLE_MAP content (the same bytes for every statement on the table)."""
    memo_key = ("keys.plan", layout_key(body, post_header_len))
    cached = schema.derived.get(memo_key)
    if cached is None:
        try:
            cached = _plan(parse_table_map(body, post_header_len), info, schema)
        except (Unkeyable, RowFormatError) as exc:
            cached = str(exc)  # remembered as a reason: re-raising one instance grows its traceback
        schema.derived[memo_key] = cached
    if isinstance(cached, str):
        raise Unkeyable(cached)
    return cached


def _plan(tmap: TableMap, info: TableInfo, schema: SchemaCache) -> _TablePlan:
    columns = info.columns
    _check_column_count(tmap, info)
    if info.opaque_uniques:
        raise Unkeyable("a unique index over an expression")
    index_defs = ([("PRIMARY", info.primary)] if info.primary else []) + list(info.uniques)
    if not index_defs:
        raise Unkeyable("no primary key and no unique index")
    wanted = tuple(sorted({o for _, ordinals in index_defs for o in ordinals}))
    slot = {o: i for i, o in enumerate(wanted)}
    indexes = []
    for name, ordinals in index_defs:
        prefixes = info.prefix_lengths(name) or (None,) * len(ordinals)
        normalizers = tuple(normalizer(columns[o], tmap.types[o], tmap.metadata[o], p, schema)
                            for o, p in zip(ordinals, prefixes))
        indexes.append(_IndexPlan(name, tuple(slot[o] for o in ordinals), normalizers,
                                  ("row", info.schema, info.name, name), ("idx", info.schema, info.name, name)))
    fsp = tuple(c.fsp for c in columns) + (0,) * (tmap.column_count - len(columns))
    return _TablePlan(("tbl", info.schema, info.name), R.RowWalker(tmap, fsp), wanted, tuple(indexes))


def _check_column_count(tmap: TableMap, info: TableInfo) -> None:
    problem = column_mismatch(tmap, info)
    if problem:
        raise Unkeyable(problem)
