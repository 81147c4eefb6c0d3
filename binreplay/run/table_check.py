"""Checks on the target tables a transaction writes, made before it is handed to a worker.

A target that was not restored from the backup these binlogs continue (a table missing, a
column added or dropped) would make the server reject a row event, or, worse, accept it
against the wrong columns. The coordinator checks each TABLE_MAP against the target's
definition at that point of the replay (DDL are barriers, so the definition it sees is the
one the transaction will meet) and stops with one clear line before anything of the
transaction is applied. It also says which non-transactional tables (MyISAM, Aria, MEMORY ...)
a transaction writes: such a transaction is applied alone and never retried blindly, and the run
names each such table once (exactly-once cannot hold for them).
"""

from __future__ import annotations

from binreplay.binlog import constants as C
from binreplay.binlog.column_types import RowFormatError
from binreplay.binlog.header import body_of, post_header_len
from binreplay.binlog.table_map import parse_table_map
from binreplay.errors import SchemaMismatchError
from binreplay.model import TableMapInfo, Transaction, TrxKind
from binreplay.server.connection import TRANSACTIONAL_ENGINES
from binreplay.server.tables import SchemaCache, column_mismatch


class TargetTables:
    def __init__(self, schema: SchemaCache) -> None:
        self.schema = schema
        self._named: set[str] = set()
        self._parts: dict[str, tuple[str, str]] = {}    # "`s`.`t` (ENGINE)" -> ("`s`.`t`", ENGINE)

    def check(self, trx: Transaction) -> tuple[str, ...]:
        """Raise SchemaMismatchError if a row event of `trx` cannot fit the target; return the
        non-transactional tables it writes, as "`schema`.`table` (ENGINE)"."""
        # A transaction with statements may create the table its rows then fill (CREATE ... SELECT):
        # only the server can judge those.
        strict = trx.kind is TrxKind.ROWS
        # Verdicts last as long as the schema cache (it is cleared after each DDL): until then a
        # table keeps its columns and its engine. Most transactions only touch tables already checked.
        checked: set = self.schema.derived.setdefault("table_check", set())
        engines: dict[tuple[str, str], str] = self.schema.derived.setdefault("non_transactional", {})
        if not trx.tables <= checked:
            for i, span in enumerate(trx.spans):
                names = trx.infos.get(i)
                if span[0] != C.TABLE_MAP_EVENT or not isinstance(names, TableMapInfo):
                    continue
                if (names.schema, names.table) in checked:
                    continue
                engine = self._verdict(names, trx.raw(span), trx, strict)
                if engine:
                    table = f"`{names.schema}`.`{names.table}`"
                    described = engines[(names.schema, names.table)] = f"{table} ({engine})"
                    self._parts[described] = (table, engine)
                if strict:
                    checked.add((names.schema, names.table))
        if not engines:
            return ()
        return tuple(sorted(engines[t] for t in trx.tables if t in engines))

    def known(self, trx: Transaction) -> tuple[str, ...] | None:
        """`check`'s answer without the server when every table of `trx` was checked since the schema
        cache was last cleared (most transactions), else None."""
        derived = self.schema.derived
        checked = derived.get("table_check")
        if checked is None or not trx.tables <= checked:
            return None
        engines = derived.get("non_transactional")
        if not engines:
            return ()
        return tuple(sorted(engines[t] for t in trx.tables if t in engines))

    def first_named(self, tables: tuple[str, ...]) -> list[tuple[str, str]]:
        """Those of `tables` (as `check` returns them) not named before, as (`schema`.`table`, engine):
        the run warns about each table once."""
        new = [t for t in tables if t not in self._named]
        self._named.update(new)
        return [self._parts[t] for t in new]

    def _verdict(self, names: TableMapInfo, raw: bytes, trx: Transaction, strict: bool) -> str:
        """The table's engine when it cannot roll back, else ""; SchemaMismatchError when the rows
        cannot fit."""
        info = self.schema.table(names.schema, names.table)
        if info is None and strict:
            # Created since the definitions were loaded, by a statement that is not a standalone DDL
            # (CREATE TABLE ... SELECT is a mixed transaction): look once more before refusing.
            self.schema.invalidate()
            info = self.schema.table(names.schema, names.table)
        if info is None:
            if strict:
                raise SchemaMismatchError(
                    f"the binlog writes rows to `{names.schema}`.`{names.table}` at {trx.start}, but the target "
                    "has no such table: was the target restored from the backup these binlogs continue?")
            return ""
        if strict:
            problem = self._shape_problem(raw, trx, info)
            if problem:
                raise SchemaMismatchError(
                    f"table `{info.schema}`.`{info.name}` on the target does not match the binlog at "
                    f"{trx.start}: {problem}; was the target restored from the backup these binlogs continue?")
        engine = info.engine or ""
        return engine if engine and engine not in TRANSACTIONAL_ENGINES else ""

    def _shape_problem(self, raw: bytes, trx: Transaction, info) -> str:
        body = body_of(raw, trx.fde.has_crc32)
        try:
            tmap = parse_table_map(body, post_header_len(trx.fde, C.TABLE_MAP_EVENT))
        except RowFormatError as exc:
            return f"its TABLE_MAP cannot be read ({exc})"
        return column_mismatch(tmap, info) or ""
