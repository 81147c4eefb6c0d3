"""What each server has (databases, tables, their columns and the key to walk), and where the two differ."""

from __future__ import annotations

from dataclasses import dataclass, field

from binreplay.commands.verify.connections import Pair, Side
from binreplay.commands.verify.results import TableResult, VerifyOptions
from binreplay.errors import UsageError
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
    return {str(n) for (n,) in side.rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}


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
    if not databases:
        return {}
    marks = ",".join(["%s"] * len(databases))
    tables = {(str(s), str(t)): TableShape(str(kind), estimated_rows=int(n or 0)) for s, t, kind, n in side.rows(
        f"SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA IN ({marks})", databases)}
    for s, t, name, data_type, column_type, nullable, collation in side.rows(
            f"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME "
            f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({marks}) "
            "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION", databases):
        if (str(s), str(t)) in tables:
            definition = f"{column_type}{'' if nullable == 'YES' else ' NOT NULL'}" + \
                (f" COLLATE {collation}" if collation else "")
            tables[str(s), str(t)].columns.append((str(name), str(data_type).lower(), definition))
    _pick_keys(side, databases, tables)
    return tables


def _pick_keys(side: Side, databases: list[str], tables: dict[tuple[str, str], TableShape]) -> None:
    """The primary key, else the first unique key whose columns are all NOT NULL (rows with a
    NULL key would fall outside every key range)."""
    marks = ",".join(["%s"] * len(databases))
    indexes: dict[tuple[str, str], dict[str, list[str]]] = {}
    nullable: set[tuple[str, str, str]] = set()
    for s, t, index, column, null in side.rows(
            f"SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE FROM information_schema.STATISTICS "
            f"WHERE TABLE_SCHEMA IN ({marks}) AND NON_UNIQUE = 0 ORDER BY TABLE_SCHEMA, TABLE_NAME, "
            "INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX", databases):
        indexes.setdefault((str(s), str(t)), {}).setdefault(str(index), []).append(str(column))
        if null == "YES":
            nullable.add((str(s), str(t), str(index)))
    for table, by_name in indexes.items():
        if table in tables:
            tables[table].key = next((cols for name, cols in by_name.items()
                                      if (*table, name) not in nullable), [])


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
