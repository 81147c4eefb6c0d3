"""What each server has (databases, tables, their columns and the key to walk), and where the two differ."""

from __future__ import annotations

from dataclasses import dataclass, field

from binreplay.commands.verify.connections import Pair, Side
from binreplay.commands.verify.results import TableResult, VerifyOptions
from binreplay.errors import UsageError
from binreplay.server import catalog as server_catalog
from binreplay.server.sql import SYSTEM_SCHEMAS

# Table types whose rows are compared (views and sequences are compared by kind only).
_CONTENT_TABLE_TYPES = frozenset({"BASE TABLE", "SYSTEM VERSIONED"})

Column = tuple[str, str, str]      # (name, DATA_TYPE, full definition)


@dataclass
class TableShape:
    kind: str                                  # information_schema TABLE_TYPE
    columns: list[Column] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    estimated_rows: int = 0


@dataclass(frozen=True)
class TableToCheck:
    """A table present with the same columns on both servers: its rows are compared next."""
    result: TableResult
    columns: list[Column]
    estimated_rows: int


def databases(side: Side) -> set[str]:
    return side.ask(server_catalog.schema_names)


def selected_databases(pair: Pair, opts: VerifyOptions) -> list[str]:
    if opts.databases:
        names = sorted(set(opts.databases))
        on_neither = [db for db in names if db not in databases(pair.ref) | databases(pair.tgt)]
        if on_neither:
            raise UsageError(f"--database {on_neither[0]}: no such database on either server")
        return names
    skip = SYSTEM_SCHEMAS | {opts.progress_schema}
    return sorted((databases(pair.ref) | databases(pair.tgt)) - skip)


def tables(side: Side, databases: list[str]) -> dict[tuple[str, str], TableShape]:
    shapes = {(t.schema, t.name): TableShape(t.kind, estimated_rows=t.estimated_rows)
              for t in side.ask(server_catalog.tables, databases)}
    for c in side.ask(server_catalog.columns, databases):
        shape = shapes.get((c.schema, c.table))
        if shape is not None:
            definition = f"{c.column_type}{'' if c.nullable else ' NOT NULL'}" + \
                (f" COLLATE {c.collation}" if c.collation else "")
            shape.columns.append((c.name, c.data_type, definition))
    _pick_keys(side, databases, shapes)
    return shapes


def _pick_keys(side: Side, databases: list[str], shapes: dict[tuple[str, str], TableShape]) -> None:
    """The primary key, else the first unique key whose columns are all NOT NULL (rows with a
    NULL key would fall outside every key range)."""
    keyed: set[tuple[str, str]] = set()
    for key in side.ask(server_catalog.unique_keys, databases):     # per table the primary key first
        table = (key.schema, key.table)
        if table in shapes and table not in keyed and not key.nullable:
            shapes[table].key = list(key.columns)
            keyed.add(table)


def compare_catalogs(ref: dict[tuple[str, str], TableShape], tgt: dict[tuple[str, str], TableShape],
                     results: list[TableResult]) -> list[TableToCheck]:
    """Record missing tables and differing columns; return the tables whose rows to compare."""
    work = []
    for name in sorted(ref.keys() | tgt.keys()):
        result = TableResult(*name)
        results.append(result)
        a, b = ref.get(name), tgt.get(name)
        if a is None or b is None:
            result.problems.append("missing on the target" if b is None else "missing on the reference "
                                                                               "(extra on the target)")
            continue
        if a.kind != b.kind:
            result.problems.append(f"a {a.kind} on the reference but a {b.kind} on the target")
            continue
        if a.kind not in _CONTENT_TABLE_TYPES:
            continue
        if [c[0] for c in a.columns] != [c[0] for c in b.columns]:
            result.problems.append(f"columns differ: reference ({', '.join(c[0] for c in a.columns)}) vs "
                                   f"target ({', '.join(c[0] for c in b.columns)})")
            continue
        for (col, _, def_a), (_, _, def_b) in zip(a.columns, b.columns):
            if def_a != def_b:
                result.problems.append(f"column {col}: {def_a} on the reference, {def_b} on the target")
        result.key = a.key
        work.append(TableToCheck(result, a.columns, a.estimated_rows))
    work.sort(key=lambda w: -w.estimated_rows)     # largest first: the threads finish together
    return work
