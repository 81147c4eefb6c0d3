"""What each server has (databases, tables: their columns, engine, indexes and triggers, and the key to
walk), and where the two differ."""

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
    engine: str | None = None
    columns: list[Column] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    estimated_rows: int = 0
    indexes: dict[str, str] = field(default_factory=dict)     # name -> definition, e.g. "UNIQUE BTREE (a, b(10))"
    triggers: dict[str, str] = field(default_factory=dict)    # name -> "BEFORE INSERT #1"
    trigger_bodies: dict[str, str] = field(default_factory=dict)


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
    shapes = {(t.schema, t.name): TableShape(t.kind, t.engine, estimated_rows=t.estimated_rows)
              for t in side.ask(server_catalog.tables, databases)}
    for c in side.ask(server_catalog.columns, databases):
        shape = shapes.get((c.schema, c.table))
        if shape is not None:
            definition = f"{c.column_type}{'' if c.nullable else ' NOT NULL'}" + \
                (f" COLLATE {c.collation}" if c.collation else "")
            shape.columns.append((c.name, c.data_type, definition))
    _pick_keys(side, databases, shapes)
    _read_indexes(side, databases, shapes)
    for trigger in side.ask(server_catalog.triggers, databases):
        shape = shapes.get((trigger.schema, trigger.table))
        if shape is not None:
            shape.triggers[trigger.name] = f"{trigger.timing} {trigger.event} #{trigger.order}"
            shape.trigger_bodies[trigger.name] = trigger.body
    return shapes


def _read_indexes(side: Side, databases: list[str], shapes: dict[tuple[str, str], TableShape]) -> None:
    parts: dict[tuple[str, str, str], list[str]] = {}
    kinds: dict[tuple[str, str, str], str] = {}
    for p in side.ask(server_catalog.index_parts, databases):
        name = (p.schema, p.table, p.index)
        column = p.column if p.column is not None else "<expression>"
        parts.setdefault(name, []).append(column + (f"({p.sub_part})" if p.sub_part is not None else ""))
        kinds[name] = f"{'UNIQUE ' if p.unique else ''}{p.index_type}"
    for (schema, table, index), columns in parts.items():
        shape = shapes.get((schema, table))
        if shape is not None:
            shape.indexes[index] = f"{kinds[schema, table, index]} ({', '.join(columns)})"


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
        result.problems += _definition_problems(a, b)
        result.key = a.key
        work.append(TableToCheck(result, a.columns, a.estimated_rows))
    work.sort(key=lambda w: -w.estimated_rows)     # largest first: the threads finish together
    return work


def _definition_problems(ref: TableShape, tgt: TableShape) -> list[str]:
    """Where a table's engine, indexes and triggers differ (its rows are compared all the same)."""
    problems = []
    if ref.engine != tgt.engine:
        problems.append(f"engine: {ref.engine} on the reference, {tgt.engine} on the target")
    for what, a, b in (("index", ref.indexes, tgt.indexes), ("trigger", ref.triggers, tgt.triggers)):
        for name in sorted(a.keys() | b.keys()):
            if name not in b:
                problems.append(f"{what} {name} ({a[name]}): missing on the target")
            elif name not in a:
                problems.append(f"{what} {name} ({b[name]}): extra on the target")
            elif a[name] != b[name]:
                problems.append(f"{what} {name}: {a[name]} on the reference, {b[name]} on the target")
            elif what == "trigger" and ref.trigger_bodies[name] != tgt.trigger_bodies[name]:
                problems.append(f"trigger {name} ({a[name]}): its body differs")
    return problems
