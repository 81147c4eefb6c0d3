"""`--apply sql`: row events -> plain SQL (INSERT / UPDATE ... WHERE pk / DELETE ... WHERE pk).

For targets where `BINLOG '<base64>'` cannot run: another flavour or version, a user
without the BINLOG privilege, a renamed database, a subset of tables. Values are exact
SQL literals (row_values.py); nothing goes through client-side escaping or Python types.

- INSERTs of adjacent WRITE events of one table become multi-row INSERTs; DELETEs by a
  one-column primary key become `WHERE pk IN (...)`; UPDATEs are one statement a row.
  Statement order inside the transaction is kept (only neighbours are merged).
- Rows are located by the primary key (from the TABLE_MAP metadata, else the target's
  definition); a table without one by every column with NULL-safe `<=>` (strings compared
  byte-exactly through a NO PAD binary collation) and LIMIT 1, so of duplicate rows one is
  changed, as the source did.
- Column names come from the TABLE_MAP (binlog_row_metadata=FULL); without them, from the
  target's definition at that point of the replay (with a warning); with neither, refused.
  In a transaction with statements (CREATE TABLE ... SELECT logs the CREATE, then the rows),
  each run of rows is translated after the statements before it ran (`translation_pieces`),
  and a table the target lacks is never remembered: a later statement may create it.
- Every statement carries the number of rows it must match (row_checks.py): an UPDATE or DELETE
  that finds no row stops the replay, as error 1032 does in binlog mode.
- The session applies rows with sql_mode 'NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES' (no
  strict mode: zero dates, YEAR 0000, ENUM '' store as they are; a 0 id stays 0),
  time_zone '+00:00' (TIMESTAMP literals are UTC), foreign_key_checks/unique_checks from
  each rows event's flags. Generated columns are left to the target to compute.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable

from binreplay.binlog import json_diff
from binreplay.binlog import constants as C
from binreplay.binlog.boundaries import is_transaction_control
from binreplay.binlog import rows as R
from binreplay.binlog.header import event_body, post_header_len
from binreplay.binlog.table_meta import TableMeta, is_character, parse_table_meta
from binreplay.apply.cross_flavor import ContextTranslation
from binreplay.errors import UnsupportedError, UsageError
from binreplay.model import Event, FormatDescription, QueryInfo, Transaction, TrxKind
from binreplay.apply.row_checks import RowCheck
from binreplay.apply.sql_values import ColumnType, renderer
from binreplay.server.catalog import default_collations
from binreplay.server.sql import quote_ident, text as _text

log = logging.getLogger(__name__)

ROWS_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES"
NO_FOREIGN_KEY_CHECKS_F = 1 << 1
RELAXED_UNIQUE_CHECKS_F = 1 << 2
MAX_STATEMENT_BYTES = 1 << 20
_HIDDEN_HASH_COLUMN = re.compile(r"^DB_ROW_HASH_\d+$")


@dataclass
class SqlApplyShared:
    """What every worker's translator shares: target facts, and a counter bumped by each
    replayed statement so cached target definitions are reloaded after a DDL."""

    flavor: str                                   # the target's
    collations: dict[int, tuple[str, str]]        # id -> (charset, collation)
    schema_epoch: int = 0
    warned: set = field(default_factory=set)
    context: ContextTranslation | None = None     # loaded by the first statement that needs it


@dataclass(frozen=True)
class RowStatement:
    """One generated statement, the rows event flags it runs under, and the rows it must match."""

    flags: int
    sql: str
    check: RowCheck


@dataclass(frozen=True)
class TargetColumn:
    name: str
    unsigned: bool
    charset: str | None
    generated: bool


@dataclass(frozen=True)
class _Column:
    index: int            # position in the row image
    name: str             # quoted identifier
    render: Callable[[bytes], str]
    match: Callable[[str], str]     # literal -> the comparison used in a WHERE without a primary key


@dataclass
class _TablePlan:
    qualified: str
    walker: R.RowWalker
    columns: tuple[_Column, ...]      # writable columns (generated ones left out)
    key: tuple[_Column, ...] | None   # primary key columns, None = match all columns
    target_known: bool = True         # built with the target's definition (False: the table was missing)


def load_target_columns(conn, schema: str, table: str) -> tuple[tuple[TargetColumn, ...], tuple[str, ...]] | None:
    """The target's columns (in order) and primary key columns, or None if there is no such table."""
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, GENERATION_EXPRESSION "
                    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                    "ORDER BY ORDINAL_POSITION", (schema, table))
        cols = tuple(TargetColumn(_text(n), " unsigned" in _text(t).lower(), _text(c) if c else None, bool(g))
                     for n, t, c, g in cur.fetchall())
        if not cols:
            return None
        cur.execute("SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s AND "
                    "TABLE_NAME=%s AND INDEX_NAME='PRIMARY' ORDER BY SEQ_IN_INDEX", (schema, table))
        return cols, tuple(_text(r[0]) for r in cur.fetchall())


class SqlTranslator:
    """Turns one session's row events into SQL; one per worker (it queries the worker's connection)."""

    def __init__(self, shared: SqlApplyShared, conn: Callable[[], object]) -> None:
        self.shared = shared
        self.conn = conn
        self._maps: dict[int, _TablePlan] = {}
        self._plans: dict[tuple[bytes, int], _TablePlan] = {}
        self._targets: dict[tuple[str, str], object] = {}
        self._epoch = shared.schema_epoch

    def statement_replayed(self) -> None:
        """A source statement (maybe DDL) is about to run: target definitions may change."""
        self.shared.schema_epoch += 1

    def context(self) -> ContextTranslation:
        """How source statements' session context is made acceptable to the target (cross_flavor.py)."""
        if self.shared.context is None:
            self.shared.context = ContextTranslation(self.shared.flavor, self.shared.collations,
                                                     default_collations(self.conn()))
        return self.shared.context

    # -- events -> statements ---------------------------------------------------------

    def translate(self, events: list[Event], fde: FormatDescription, file: str = "") -> list[RowStatement]:
        """TABLE_MAP and rows events (in order, from binlog `file`) -> statements."""
        if self._epoch != self.shared.schema_epoch:
            self._epoch = self.shared.schema_epoch
            self._plans.clear()
            self._targets.clear()
        out: list[RowStatement] = []
        batch: _Batch | None = None
        for ev in events:
            body = event_body(ev, fde)
            phl = post_header_len(fde, ev.type_code)
            if ev.type_code == C.TABLE_MAP_EVENT:
                key = (body[6:] if phl != 6 else body[4:], phl)   # the layout, not the table id
                plan = self._plans.get(key)
                if plan is None:
                    plan = self._plan(R.parse_table_map(body, phl), fde.flavor)
                    if plan.target_known:   # else the next statement may create the table
                        self._plans[key] = plan
                self._maps[R.rows_table_id(body, phl)] = plan
                continue
            partial = ev.type_code == C.PARTIAL_UPDATE_ROWS_EVENT
            try:
                # A MySQL partial JSON update has an UPDATE_ROWS v2 header; its after images differ (json_diff.py).
                rows = R.parse_rows_event(C.UPDATE_ROWS_EVENT if partial else ev.type_code, body, phl)
            except R.RowFormatError as exc:
                raise UnsupportedError(f"a rows event at {ev.start} cannot be decoded: {exc}") from None
            plan = self._maps.get(rows.table_id)
            if plan is None:
                raise UnsupportedError(f"a rows event at {ev.start} has no TABLE_MAP before it")
            if partial:
                if batch is not None:
                    out.extend(batch.finish())
                    batch = None
                out.extend(self._partial_updates(plan, rows, f"{file}:{ev.start}"))
                continue
            try:
                images = plan.walker.images(rows, tuple(range(rows.column_count)))
            except R.RowFormatError as exc:
                raise UnsupportedError(f"the rows event at {ev.start} cannot be decoded: {exc}") from None
            batch = self._add(out, batch, plan, rows, images, f"{file}:{ev.start}")
        if batch is not None:
            out.extend(batch.finish())
        return out

    def _add(self, out: list[RowStatement], batch: "_Batch | None", plan: _TablePlan, rows: R.RowsEvent,
             images: list[tuple], position: str) -> "_Batch | None":
        flags = rows.flags & (NO_FOREIGN_KEY_CHECKS_F | RELAXED_UNIQUE_CHECKS_F)
        one = (lambda verb, sql: RowStatement(flags, sql, RowCheck(verb, plan.qualified, position, 1)))
        if rows.kind == R.UPDATE:
            if batch is not None:
                out.extend(batch.finish())
            for before, after in zip(images[0::2], images[1::2]):
                if before != after:
                    out.append(one("UPDATE", _update(plan, before, after)))
            return None
        if batch is not None and not batch.accepts(plan, rows.kind, rows.present, flags):
            out.extend(batch.finish())
            batch = None
        for image in images:
            if rows.kind == R.DELETE and (plan.key is None or len(plan.key) != 1):
                out.append(one("DELETE", _delete_one(plan, image)))
                continue
            if batch is None:
                batch = _Batch(plan, rows.kind, rows.present, flags, position)
            batch.add(image)
            if batch.size >= MAX_STATEMENT_BYTES:
                out.extend(batch.finish())
                batch = None
        return batch

    def _partial_updates(self, plan: _TablePlan, rows: R.RowsEvent, at: str) -> list[RowStatement]:
        flags = rows.flags & (NO_FOREIGN_KEY_CHECKS_F | RELAXED_UNIQUE_CHECKS_F)
        try:
            partial_rows = json_diff.partial_rows(plan.walker, rows)
        except R.RowFormatError as exc:
            raise UnsupportedError(f"the partial JSON update at {at} cannot be decoded: {exc}") from None
        out = []
        for row in partial_rows:
            sets = json_diff.partial_update_sets(plan.columns, row, self.shared.flavor)
            if sets:
                out.append(RowStatement(flags, f"UPDATE {plan.qualified} SET {', '.join(sets)}{_where(plan, row.before)}",
                                        RowCheck("UPDATE", plan.qualified, at, 1)))
        return out

    # -- table plans -------------------------------------------------------------------

    def _plan(self, tmap: R.TableMap, source_flavor: str) -> _TablePlan:
        meta = parse_table_meta(tmap, source_flavor)
        target = self._target(tmap.schema, tmap.table)
        names = self._names(tmap, meta, target)
        tcols = {c.name.lower(): c for c in target[0]} if target else {}
        collations = self.shared.collations
        columns = []
        by_name = {}
        for i, (t, m) in enumerate(zip(tmap.types, tmap.metadata)):
            name = names[i]
            tcol = tcols.get(name.lower())
            if target and tcol is None and _HIDDEN_HASH_COLUMN.match(name):
                continue  # MariaDB's hidden hash of a long UNIQUE: the target computes it
            unsigned = meta.unsigned[i] if meta.unsigned is not None else bool(tcol and tcol.unsigned)
            charset = None
            if is_character(t, source_flavor) or t == R.T_GEOMETRY:
                cid = meta.collations[i] if meta.collations is not None else None
                charset = collations[cid][0] if cid in collations else (tcol.charset if tcol else None)
                if t == R.T_GEOMETRY:
                    charset = "binary"
            ctype = ColumnType(t, m, unsigned, charset or "binary")
            col = _Column(i, quote_ident(name), renderer(ctype, self.shared.flavor),
                          self._matcher(t, charset))
            by_name[name.lower()] = col
            if tcol is not None and tcol.generated:
                continue
            columns.append(col)
        key = None
        if meta.primary_key:
            key = tuple(by_name[names[i].lower()] for i in meta.primary_key)
        elif target and target[1]:
            key = tuple(by_name[n.lower()] for n in target[1] if n.lower() in by_name) or None
        qualified = quote_ident(tmap.schema) + "." + quote_ident(tmap.table)
        return _TablePlan(qualified, R.RowWalker(tmap), tuple(columns), key, target_known=target is not None)

    def _target(self, schema: str, table: str):
        k = (schema, table)
        found = self._targets.get(k)
        if found is None:
            found = load_target_columns(self.conn(), schema, table)
            if found is not None:   # a missing table is asked for again: a statement may create it
                self._targets[k] = found
        return found

    def _names(self, tmap: R.TableMap, meta: TableMeta, target) -> tuple[str, ...]:
        if meta.names is not None:
            return meta.names
        where = f"`{tmap.schema}`.`{tmap.table}`"
        if target is None:
            raise UnsupportedError(f"the binlog has no column names for {where} (the source did not log "
                                   "binlog_row_metadata=FULL) and the target has no such table to take them from; "
                                   "use --apply binlog")
        cols = target[0]
        if len(cols) != tmap.column_count:
            raise UnsupportedError(f"the binlog has no column names for {where} and the target's table has "
                                   f"{len(cols)} columns where the binlog has {tmap.column_count}; use --apply binlog")
        if where not in self.shared.warned:
            self.shared.warned.add(where)
            log.warning("%s: the binlog has no column names (binlog_row_metadata is not FULL on the source); "
                        "taking them from the target's definition by position", where)
        return tuple(c.name for c in cols)

    def _matcher(self, type_code: int, charset: str | None) -> Callable[[str], str]:
        """How a column is compared with a value when no primary key locates the row."""
        if charset and charset != "binary" and type_code != R.T_GEOMETRY:
            collation = (f"{charset}_nopad_bin" if self.shared.flavor == "mariadb"
                         else "utf8mb4_0900_bin" if charset == "utf8mb4" else f"{charset}_bin")
            return lambda lit: f"{lit} COLLATE {collation}"
        return lambda lit: lit


def _values(columns: tuple[_Column, ...], image: tuple) -> list[tuple[_Column, str]]:
    out = []
    for c in columns:
        v = image[c.index]
        if v is R.ABSENT:
            continue
        out.append((c, "NULL" if v is None else c.render(v)))
    return out


def _where(plan: _TablePlan, image: tuple) -> str:
    if plan.key is not None:
        parts = []
        for c in plan.key:
            v = image[c.index]
            if v is R.ABSENT:
                raise UnsupportedError(f"{plan.qualified}: the before image lacks primary key column {c.name}")
            parts.append(f"{c.name} IS NULL" if v is None else f"{c.name}={c.render(v)}")
        return " WHERE " + " AND ".join(parts)
    parts = []
    for c in plan.columns:
        v = image[c.index]
        if v is R.ABSENT:
            continue
        parts.append(f"{c.name} IS NULL" if v is None else f"{c.name}<=>{c.match(c.render(v))}")
    return " WHERE " + " AND ".join(parts) + " LIMIT 1"


def _update(plan: _TablePlan, before: tuple, after: tuple) -> str:
    sets = ", ".join(f"{c.name}={v}" for c, v in _values(plan.columns, after))
    return f"UPDATE {plan.qualified} SET {sets}{_where(plan, before)}"


def _delete_one(plan: _TablePlan, image: tuple) -> str:
    return f"DELETE FROM {plan.qualified}{_where(plan, image)}"


class _Batch:
    """Adjacent rows of one table and kind: one multi-row INSERT, or one DELETE ... IN (...)."""

    def __init__(self, plan: _TablePlan, kind: str, present: int, flags: int, position: str) -> None:
        self.plan, self.kind, self.present, self.flags = plan, kind, present, flags
        self.position = position          # of the first rows event in the batch
        self.items: list[str] = []
        self.size = 0
        self.header = ""

    def accepts(self, plan: _TablePlan, kind: str, present: int, flags: int) -> bool:
        return plan is self.plan and kind == self.kind and present == self.present and flags == self.flags

    def add(self, image: tuple) -> None:
        if self.kind == R.WRITE:
            values = _values(self.plan.columns, image)
            if not self.header:
                names = ", ".join(c.name for c, _ in values)
                self.header = f"INSERT INTO {self.plan.qualified} ({names}) VALUES "
            item = "(" + ", ".join(v for _, v in values) + ")"
        else:
            (c,) = self.plan.key  # type: ignore[misc]
            v = image[c.index]
            if v is R.ABSENT:
                raise UnsupportedError(f"{self.plan.qualified}: the before image lacks primary key column {c.name}")
            item = "NULL" if v is None else c.render(v)
            if not self.header:
                self.header = f"DELETE FROM {self.plan.qualified} WHERE {c.name} IN ("
        self.items.append(item)
        self.size += len(item) + 2

    def finish(self) -> list[RowStatement]:
        if not self.items:
            return []
        sql = self.header + ",".join(self.items) + ("" if self.kind == R.WRITE else ")")
        verb = "INSERT" if self.kind == R.WRITE else "DELETE"
        return [RowStatement(self.flags, sql, RowCheck(verb, self.plan.qualified, self.position, len(self.items)))]


class TranslatedDialect:
    """The session context of a source statement as the target understands it (cross_flavor.py),
    loaded from the target the first time a statement needs it."""

    def __init__(self, translator: SqlTranslator) -> None:
        self._translator = translator

    def collation(self, cid: int, source_flavor: str) -> int:
        return self._translator.context().collation(cid, source_flavor)

    def has_variable(self, name: str, source_flavor: str) -> bool:
        return self._translator.context().has_variable(name, source_flavor)

    def sql_mode(self, mode: int, source_flavor: str) -> int:
        return self._translator.context().sql_mode(mode, source_flavor)

    def statement(self, sql: bytes) -> bytes:
        return self._translator.context().statement(sql)


def translation_pieces(trx: Transaction) -> list[Transaction]:
    """`trx` cut before each run of row events that follows a statement of its own, so each run is
    translated once the statements before it have run on the target (CREATE TABLE t2 SELECT: the
    rows of t2 need t2's definition). A transaction without statements stays whole."""
    if trx.kind not in (TrxKind.STATEMENT, TrxKind.MIXED):
        return [trx]
    pieces: list[list[Event]] = [[]]
    after_statement = False
    for ev in trx.events:
        if ev.type_code == C.TABLE_MAP_EVENT or ev.type_code in C.ROWS_EVENTS:
            if after_statement:
                pieces.append([])
                after_statement = False
        elif isinstance(ev.info, QueryInfo) and not is_transaction_control(ev.info.sql):
            after_statement = True
        pieces[-1].append(ev)
    return [trx] if len(pieces) == 1 else [trx.with_events(events) for events in pieces]


def session_settings(flags: int) -> list[tuple[str, object, str]]:
    """(state key, value, SET statement) for applying rows; sent only when they change."""
    fk = 0 if flags & NO_FOREIGN_KEY_CHECKS_F else 1
    uc = 0 if flags & RELAXED_UNIQUE_CHECKS_F else 1
    return [
        ("sql_mode", "rows", f"SET @@session.sql_mode='{ROWS_SQL_MODE}'"),
        ("time_zone", "+00:00", "SET @@session.time_zone='+00:00'"),
        ("charset", "rows", "SET @@session.character_set_client=utf8mb4"),
        ("flags2", ("rows", fk, uc), f"SET @@session.foreign_key_checks={fk}, @@session.unique_checks={uc}"),
    ]


def check_triggers(conn, filters, progress_schema: str, allow: bool) -> list[str]:
    """Tables the replay writes that have triggers on the target: refused unless `allow`
    (SQL-applied rows fire them; BINLOG-applied rows do not). Returns them for a warning."""
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                    "WHERE EVENT_OBJECT_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', "
                    "'performance_schema', %s)", (progress_schema,))
        rows = [(_text(s), _text(t)) for s, t in cur.fetchall()]
    hit = []
    for schema, table in rows:
        sources = filters.source_dbs(schema) if filters is not None else (schema,)
        if any(filters is None or filters.wants_table(source, table) for source in sources):
            hit.append(f"`{schema}`.`{table}`")
    if hit and not allow:
        raise UsageError(f"the target has triggers on {', '.join(sorted(hit)[:5])}"
                         f"{' and more' if len(hit) > 5 else ''}: with --apply sql they would fire on replayed "
                         "rows (they do not with --apply binlog); drop them or rerun with --allow-triggers")
    return hit

