"""`--apply sql`: row events -> plain SQL (INSERT / UPDATE ... WHERE pk / DELETE ... WHERE pk).

For targets where `BINLOG '<base64>'` cannot run: another flavour or version, a user
without the BINLOG privilege, a renamed database, a subset of tables. Values are exact
SQL literals (sql_values.py); nothing goes through client-side escaping or Python types.
This module turns one session's events into statements (`SqlTranslator`); their text, how a
row is located and which neighbours share a statement, is sql_statements.py's.

- Statement order inside the transaction is kept (only neighbours are merged).
- Rows are located by the primary key (from the TABLE_MAP metadata, else the target's
  definition); a table without one by all its columns (sql_statements.py).
- Column names come from the TABLE_MAP (binlog_row_metadata=FULL); without them, from the
  target's definition at that point of the replay (with a warning); with neither, refused.
  In a transaction with statements (CREATE TABLE ... SELECT logs the CREATE, then the rows),
  each run of rows is translated after the statements before it ran (`translation_pieces`),
  and a table the target lacks is never remembered: a later statement may create it.
- Every statement carries the number of rows it must match (row_checks.py): an UPDATE or DELETE
  that finds no row stops the replay, as error 1032 does in binlog mode.
- The session applies rows with sql_mode 'NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES' (no
  strict mode: zero dates, YEAR 0000, ENUM '' store as they are; a 0 id stays 0; backslash
  escapes, which sql_values.py's literals use), time_zone '+00:00' (TIMESTAMP literals are UTC),
  character_set_client utf8mb4, and foreign_key_checks, unique_checks and (MariaDB)
  check_constraint_checks from each rows event's flags, as a replica applies them. Generated
  columns are left to the target to compute.
- Statements are sized to the target's max_allowed_packet (`SqlApplyShared.max_packet`,
  sql_statements.batch_budget, packets.fit_packets).
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from binreplay.apply.cross_flavor import ContextTranslation
from binreplay.apply.row_checks import RowCheck
from binreplay.apply.sql_statements import (
    Batch,
    PlanColumn,
    RowStatement,
    TablePlan,
    batch_budget,
    delete_statement,
    update_statement,
    where_clause,
)
from binreplay.apply.sql_values import ColumnType, renderer
from binreplay.binlog import column_types as T
from binreplay.binlog import constants as C
from binreplay.binlog import json_diff
from binreplay.binlog import rows as R
from binreplay.binlog.boundaries import is_transaction_control
from binreplay.binlog.column_types import RowFormatError
from binreplay.binlog.header import event_body, post_header_len
from binreplay.binlog.table_map import TableMap, layout_key, parse_table_map
from binreplay.binlog.table_meta import TableMeta, is_character, parse_table_meta
from binreplay.errors import BadInputError, UnsupportedError, UsageError
from binreplay.model import Event, FormatDescription, QueryInfo, Transaction, TrxKind
from binreplay.server.catalog import Connection, TableColumn, default_collations, table_columns, table_triggers
from binreplay.server.sql import quote_ident
from binreplay.source.filters import Filters

log = logging.getLogger(__name__)

ROWS_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES"
# Rows event flags that carry the source session's checks (MariaDB's log_event.h; MySQL has the first two).
NO_FOREIGN_KEY_CHECKS_F = 1 << 1
RELAXED_UNIQUE_CHECKS_F = 1 << 2
NO_CHECK_CONSTRAINT_CHECKS_F = 1 << 7     # MariaDB: written with check_constraint_checks=0
_HIDDEN_HASH_COLUMN = re.compile(r"^DB_ROW_HASH_\d+$")

# What decoding a damaged event can raise: the decoders' own error, and what unpacking bytes that are
# too short or not what their type says raises (anything else is a bug: exit 1).
_DECODING_FAILURES = (RowFormatError, struct.error, IndexError, ValueError, UnicodeDecodeError, OverflowError)

TargetTable = tuple[tuple[TableColumn, ...], tuple[str, ...]]   # columns in order, primary key columns


@dataclass
class SqlApplyShared:
    """What every worker's translator shares: target facts, and a counter bumped by each
    replayed statement so cached target definitions are reloaded after a DDL."""

    flavor: str                                   # the target's
    collations: dict[int, tuple[str, str]]        # id -> (charset, collation)
    max_packet: int = 16 << 20                    # the target's max_allowed_packet
    schema_epoch: int = 0
    warned: set = field(default_factory=set)
    context: ContextTranslation | None = None     # loaded by the first statement that needs it


class SqlTranslator:
    """Turns one session's row events into SQL; one per worker (it queries the worker's connection)."""

    def __init__(self, shared: SqlApplyShared, conn: Callable[[], Connection]) -> None:
        self.shared = shared
        self.conn = conn
        self._maps: dict[int, TablePlan] = {}
        self._plans: dict[tuple[bytes, int], TablePlan] = {}
        self._targets: dict[tuple[str, str], TargetTable] = {}
        self._epoch = shared.schema_epoch
        self._budget = batch_budget(shared.max_packet)

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
        batch: Batch | None = None
        for ev in events:
            try:
                batch = self._event(ev, fde, file, out, batch)
            except _DECODING_FAILURES as exc:
                # The reader checked the framing; what is inside the event is damaged (CRC and all).
                raise BadInputError(f"{file}: {ev.name} event at position {ev.start}: it cannot be decoded "
                                    f"({exc or type(exc).__name__}; corrupt binlog?)") from None
        if batch is not None:
            out.extend(batch.finish())
        return out

    def _event(self, ev: Event, fde: FormatDescription, file: str, out: list[RowStatement],
               batch: Batch | None) -> Batch | None:
        """One TABLE_MAP or rows event: its statements to `out`; the batch of rows still open."""
        body = event_body(ev, fde)
        phl = post_header_len(fde, ev.type_code)
        if ev.type_code == C.TABLE_MAP_EVENT:
            key = (layout_key(body, phl), phl)
            plan = self._plans.get(key)
            if plan is None:
                plan = self._plan(parse_table_map(body, phl), fde.flavor)
                if plan.target_known:   # else the next statement may create the table
                    self._plans[key] = plan
            self._maps[R.rows_table_id(body, phl)] = plan
            return batch
        partial = ev.type_code == C.PARTIAL_UPDATE_ROWS_EVENT
        # A MySQL partial JSON update has an UPDATE_ROWS v2 header; its after images differ (json_diff.py).
        rows = R.parse_rows_event(C.UPDATE_ROWS_EVENT if partial else ev.type_code, body, phl)
        plan = self._maps.get(rows.table_id)
        if plan is None:
            raise RowFormatError(f"it changes rows of table id {rows.table_id}, which no TABLE_MAP before it maps")
        if partial:
            if batch is not None:
                out.extend(batch.finish())
            out.extend(self._partial_updates(plan, rows, self._flags(rows, fde), f"{file}:{ev.start}"))
            return None
        images = plan.walker.images(rows, tuple(range(rows.column_count)))
        return self._add(out, batch, plan, rows, self._flags(rows, fde), images, f"{file}:{ev.start}")

    def _flags(self, rows: R.RowsEvent, fde: FormatDescription) -> int:
        """The rows event's flags that say which checks its statements run with."""
        mask = NO_FOREIGN_KEY_CHECKS_F | RELAXED_UNIQUE_CHECKS_F
        if fde.flavor == "mariadb":
            mask |= NO_CHECK_CONSTRAINT_CHECKS_F
        return rows.flags & mask

    def _add(self, out: list[RowStatement], batch: Batch | None, plan: TablePlan, rows: R.RowsEvent,
             flags: int, images: list[tuple], position: str) -> Batch | None:

        def one(verb: str, sql: str) -> RowStatement:
            return RowStatement(flags, sql, RowCheck(verb, plan.qualified, position, 1))

        if rows.kind == R.UPDATE:
            if batch is not None:
                out.extend(batch.finish())
            for before, after in zip(images[0::2], images[1::2]):
                if before != after:
                    out.append(one("UPDATE", update_statement(plan, before, after)))
            return None
        if batch is not None and not batch.accepts(plan, rows.kind, rows.present, flags):
            out.extend(batch.finish())
            batch = None
        for image in images:
            if rows.kind == R.DELETE and (plan.key is None or len(plan.key) != 1):
                out.append(one("DELETE", delete_statement(plan, image)))
                continue
            if batch is None:
                batch = Batch(plan, rows.kind, rows.present, flags, position, self._budget)
            row = batch.row(image)
            if not batch.fits(row):
                out.extend(batch.finish())
                batch = Batch(plan, rows.kind, rows.present, flags, position, self._budget)
            batch.add(image, row)
        return batch

    def _partial_updates(self, plan: TablePlan, rows: R.RowsEvent, flags: int, at: str) -> list[RowStatement]:
        partial_rows = json_diff.partial_rows(plan.walker, rows)   # RowFormatError: bad input (translate)
        out = []
        for row in partial_rows:
            sets = json_diff.partial_update_sets(plan.columns, row, self.shared.flavor)
            if sets:
                sql = f"UPDATE {plan.qualified} SET {', '.join(sets)}{where_clause(plan, row.before)}"
                out.append(RowStatement(flags, sql, RowCheck("UPDATE", plan.qualified, at, 1)))
        return out

    # -- table plans -------------------------------------------------------------------

    def _plan(self, tmap: TableMap, source_flavor: str) -> TablePlan:
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
            if is_character(t, source_flavor) or t == T.T_GEOMETRY:
                cid = meta.collations[i] if meta.collations is not None else None
                charset = collations[cid][0] if cid in collations else (tcol.charset if tcol else None)
                if t == T.T_GEOMETRY:
                    charset = "binary"
            ctype = ColumnType(t, m, unsigned, charset or "binary")
            col = PlanColumn(i, quote_ident(name), renderer(ctype, self.shared.flavor),
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
        return TablePlan(qualified, R.RowWalker(tmap), tuple(columns), key, target_known=target is not None)

    def _target(self, schema: str, table: str) -> TargetTable | None:
        k = (schema, table)
        found = self._targets.get(k)
        if found is None:
            found = table_columns(self.conn(), schema, table)
            if found is not None:   # a missing table is asked for again: a statement may create it
                self._targets[k] = found
        return found

    def _names(self, tmap: TableMap, meta: TableMeta, target: TargetTable | None) -> tuple[str, ...]:
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
        if charset and charset != "binary" and type_code != T.T_GEOMETRY:
            collation = (f"{charset}_nopad_bin" if self.shared.flavor == "mariadb"
                         else "utf8mb4_0900_bin" if charset == "utf8mb4" else f"{charset}_bin")
            return lambda lit: f"{lit} COLLATE {collation}"
        return lambda lit: lit


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


def session_settings(flags: int, target_flavor: str) -> list[tuple[str, object, str]]:
    """(state key, value, SET statement) for applying rows; sent only when they change."""
    fk = 0 if flags & NO_FOREIGN_KEY_CHECKS_F else 1
    uc = 0 if flags & RELAXED_UNIQUE_CHECKS_F else 1
    checks = f"@@session.foreign_key_checks={fk}, @@session.unique_checks={uc}"
    if target_flavor == "mariadb":
        checks += f", @@session.check_constraint_checks={0 if flags & NO_CHECK_CONSTRAINT_CHECKS_F else 1}"
    return [
        ("sql_mode", "rows", f"SET @@session.sql_mode='{ROWS_SQL_MODE}'"),
        ("time_zone", "+00:00", "SET @@session.time_zone='+00:00'"),
        ("charset", "rows", "SET @@session.character_set_client=utf8mb4"),
        ("flags2", ("rows", checks), f"SET {checks}"),
    ]


class TriggerWatch:
    """Triggers on the tables a replay writes (--apply sql). A replica applying row events does
    not fire triggers (slave_run_triggers_for_rbr=NO) and neither do BINLOG statements, but the
    statements of --apply sql do, and what the source's triggers did is in the binlog as row
    events too: their effects would land twice. MariaDB has no way to run a statement without its
    triggers, so the run refuses (exit 2) unless --allow-triggers, where each trigger is warned
    about once. Checked at the start and, because the binlog itself may create triggers (or move
    one onto a written table with RENAME TABLE), again after every DDL the replay applies, before
    anything after it: a trigger created mid-stream is treated like one present at the start."""

    def __init__(self, filters: Filters | None, progress_schema: str, allow: bool) -> None:
        self.filters = filters
        self.progress_schema = progress_schema
        self.allow = allow
        self._known: set[tuple[str, str, str]] = set()   # (schema, table, trigger) found before

    def check(self, conn: Connection, after: str | None = None) -> list[str]:
        """Triggers on written tables not found before: refused unless allowed, else returned as
        warnings. `after`: the source position of the statement that may have created them
        (None: the start of the run)."""
        found = sorted(t for t in table_triggers(conn, exclude=(self.progress_schema,))
                       if t not in self._known and self._written(t[0], t[1]))
        self._known.update(found)
        if not found:
            return []
        by_table: dict[str, list[str]] = {}
        for schema, table, trigger in found:
            by_table.setdefault(f"{quote_ident(schema)}.{quote_ident(table)}", []).append(
                f"{quote_ident(schema)}.{quote_ident(trigger)}")
        named = [f"{table} ({', '.join(triggers)})" for table, triggers in by_table.items()]
        what = f"triggers on {', '.join(named[:5])}{' and more' if len(named) > 5 else ''}"
        when = "the target has" if after is None else f"after the source statement at {after}, the target has"
        if not self.allow:
            tail = "" if after is None else " (nothing after that statement was applied)"
            raise UsageError(f"{when} {what}: with --apply sql they would fire on replayed rows, whose "
                             f"binlog already holds what the source's triggers did (they do not fire with "
                             f"--apply binlog){tail}; use --apply binlog, drop them, or rerun with --allow-triggers")
        return [f"{when} triggers on {table} ({', '.join(triggers)}): they fire on rows replayed with --apply sql "
                "(--allow-triggers)" for table, triggers in by_table.items()]

    def _written(self, schema: str, table: str) -> bool:
        """Whether the replay writes rows of the target's `schema`.`table` (--database, --table, --rewrite-db)."""
        if self.filters is None:
            return True
        return any(self.filters.wants_table(source, table) for source in self.filters.source_dbs(schema))
