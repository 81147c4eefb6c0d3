"""`binreplay plan`: what a replay of these binlogs would meet, read from the files alone.

Reads the binlogs with the replay's own reader and selection (same validation, same errors),
and reports volume per database and table, DDL and other barriers, the largest transactions,
and, per dependency mode, what the real scheduler would make of the transactions with 1, 4, 8
and 16 workers (simulation.py). No server is contacted: row keys come from the binlog's own
table metadata (binlog_tables.py), and the report says where that is coarser or finer than
the target's schema would be.
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog import rows as R
from binreplay.binlog.boundaries import is_transaction_control
from binreplay.binlog.column_types import RowFormatError
from binreplay.binlog.header import event_body, post_header_len
from binreplay.binlog.names import files_used
from binreplay.binlog.table_map import layout_key, parse_table_map, table_map_names
from binreplay.commands.plan.binlog_tables import BinlogSchema
from binreplay.commands.plan.simulation import CriticalPath, SimResult, Simulation
from binreplay.model import Event, FormatDescription, QueryInfo, Transaction, TrxKind
from binreplay.schedule.dependencies import EVERYTHING, MODES, Dependencies
from binreplay.schedule.limits import BATCH
from binreplay.source.reader import BinlogReader
from binreplay.source.selection import (
    SelectionArgs,
    Selector,
    UnreachedStop,
    Verdict,
    check_end,
    resolve_bounds,
    selected,
)

WORKER_COUNTS = (4, 8, 16)
# A smaller pool is preferred while its simulated speed-up is within this share of the best.
GOOD_ENOUGH = 0.9
_SQL_KEPT = 1000   # characters of a DDL statement kept in the plan


@dataclass
class TableStats:
    database: str
    table: str
    transactions: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    bytes: int = 0
    uncounted_events: int = 0      # rows events whose rows could not be walked (counted as bytes only)
    row_keys: str = ""             # how row mode keys it: 'primary key' or why it falls back to a table key

    @property
    def rows(self) -> int:
        return self.inserts + self.updates + self.deletes


@dataclass
class DatabaseStats:
    database: str
    transactions: int = 0
    rows: int = 0
    bytes: int = 0                 # row events and statements whose default database it is
    statements: int = 0


@dataclass
class StatementInfo:
    position: str
    timestamp: int
    database: str
    sql: str


@dataclass
class TransactionInfo:
    position: str
    timestamp: int
    gtid: str | None
    bytes: int
    rows: int
    tables: list[str]


@dataclass
class WorkerEstimate:
    workers: int
    speedup: float
    average_busy: float            # workers applying at once, on average
    busy_histogram: list[float]    # share of the time with k workers applying, k = 0..workers
    groups: int                    # target commits

    @classmethod
    def of(cls, sim: SimResult, serial_us: float) -> WorkerEstimate:
        return cls(sim.workers, round(serial_us / sim.time_us, 2) if sim.time_us else 1.0,
                   round(sim.average_busy, 2), [round(x, 4) for x in sim.busy_histogram], sim.groups)


@dataclass
class ModeEstimate:
    mode: str
    workers: list[WorkerEstimate]
    longest_chain: int             # transactions in the longest dependency chain
    critical_path_share: float     # share of the apply work on the costliest chain
    bound: float                   # speed-up no worker count can exceed in this mode


@dataclass
class Recommendation:
    workers: int
    dependency: str
    speedup: float
    reason: str


@dataclass
class Plan:
    files: list[str]
    files_used: str = ""           # names and folders of the files read (names.files_used)
    transactions: int = 0
    skipped: int = 0
    first_timestamp: int | None = None
    last_timestamp: int | None = None
    bytes: int = 0                 # binlog bytes of the selected transactions
    events: int = 0
    rows: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    compressed: int = 0            # MySQL TRANSACTION_PAYLOAD transactions (replay refuses them yet)
    databases: list[DatabaseStats] = field(default_factory=list)
    tables: list[TableStats] = field(default_factory=list)
    ddl: list[StatementInfo] = field(default_factory=list)
    barriers: dict[str, int] = field(default_factory=dict)
    largest: list[TransactionInfo] = field(default_factory=list)
    modes: list[ModeEstimate] = field(default_factory=list)
    serial_groups: int = 0         # target commits of a one-worker replay
    row_key_notes: list[str] = field(default_factory=list)
    recommendation: Recommendation | None = None
    stop_reason: str | None = None
    start_reason: str | None = None    # which event and transaction decided --start-datetime
    warnings: list[str] = field(default_factory=list)


def make_plan(files: list[Path], selection: SelectionArgs, top: int = 10) -> Plan:
    """Plan what a replay of `files` with these start/stop options would apply; `top` bounds the
    list of largest transactions."""
    # A stop datetime no event reaches is a warning here: replay refuses it (exit 12) without
    # --allow-unreached-stop, and the plan says so instead of failing.
    bounds = resolve_bounds(files, dataclasses.replace(selection, unreached_stop=UnreachedStop.WARN))
    plan = Plan(files=[str(f) for f in files[bounds.start_file_index:]],
                files_used=files_used(files[bounds.start_file_index:]))
    reader = BinlogReader(files, start_file_index=bounds.start_file_index, start_pos=bounds.start_position,
                          on_warning=plan.warnings.append)
    selector = Selector(bounds)
    survey = _Survey(plan, top)
    for trx, verdict in selected(reader.transactions(), selector):
        if verdict is Verdict.APPLY:
            survey.add(trx)
        else:
            plan.skipped += 1
    plan.warnings += [f"{w}; replay refuses this (exit 12) without --allow-unreached-stop"
                      if "--stop-datetime" in w else w for w in check_end(selector, bounds, reader)]
    plan.stop_reason, plan.start_reason = selector.stop_reason, selector.start_reason
    survey.finish()
    return plan


class _Survey:
    """Everything the plan learns from the selected transactions, one pass."""

    def __init__(self, plan: Plan, top: int) -> None:
        self.plan = plan
        self.top = top
        self.tables: dict[tuple[str, str], TableStats] = {}
        self.databases: dict[str, DatabaseStats] = {}
        self.largest: list[tuple[int, int, TransactionInfo]] = []   # min-heap of the `top` largest
        self.walkers: dict[bytes, R.RowWalker | None] = {}
        self.schema = BinlogSchema()
        self.deps = {mode: Dependencies(mode, self.schema) for mode in MODES}
        # Cut pairs of batches by table as replay does (schedule/partition.py), by their table keys.
        self.sims = {mode: [Simulation(n, table_keys=None if mode == "commit-order" else self._table_keys)
                            for n in WORKER_COUNTS] for mode in MODES}
        self._keys_by_seq: dict[int, frozenset] = {}
        self.paths = {mode: CriticalPath() for mode in MODES}
        self.serial = Simulation(1)    # one worker: no keys at all, as replay does

    def add(self, trx: Transaction) -> None:
        plan = self.plan
        plan.transactions += 1
        plan.bytes += trx.size
        plan.events += len(trx.events)
        plan.kinds[trx.kind.value] = plan.kinds.get(trx.kind.value, 0) + 1
        plan.compressed += trx.from_payload
        if plan.first_timestamp is None:
            plan.first_timestamp = trx.timestamp
        plan.last_timestamp = trx.timestamp
        rows, tables = self._count(trx)
        plan.rows += rows
        self._barrier(trx)
        info = TransactionInfo(str(trx.start), trx.timestamp, str(trx.gtid) if trx.gtid else None, trx.size, rows,
                               sorted(f"{s}.{t}" for s, t in tables))
        entry = (trx.size, -trx.seq, info)
        if len(self.largest) < self.top:
            heapq.heappush(self.largest, entry)
        elif entry[:2] > self.largest[0][:2]:
            heapq.heapreplace(self.largest, entry)
        self._simulate(trx)

    # -- volume ----------------------------------------------------------------------

    def _count(self, trx: Transaction) -> tuple[int, set[tuple[str, str]]]:
        """Rows and bytes per table and database; returns (rows, tables) of the transaction."""
        fde = trx.fde
        maps: dict[int, tuple[TableStats, R.RowWalker | None]] = {}
        touched: set[tuple[str, str]] = set()
        databases: set[str] = set()
        total = 0
        for ev in trx.events:
            t = ev.type_code
            if t == C.TABLE_MAP_EVENT:
                body = event_body(ev, fde)
                table_id, stats, walker = self._table(body, post_header_len(fde, t))
                maps[table_id] = (stats, walker)
                stats.bytes += len(ev.raw)
                self._database(stats.database).bytes += len(ev.raw)
                if (stats.database, stats.table) not in touched:
                    touched.add((stats.database, stats.table))
                    stats.transactions += 1
            elif t in C.ROWS_EVENTS:
                total += self._rows_event(ev, fde, maps)
            elif isinstance(ev.info, QueryInfo) and not is_transaction_control(ev.info.sql):
                db = self._database(ev.info.db)
                db.statements += 1
                db.bytes += len(ev.raw)
                databases.add(ev.info.db)
        for schema, _table in touched:
            databases.add(schema)
        for name in databases:
            self._database(name).transactions += 1
        return total, touched

    def _table(self, body: bytes, phl: int) -> tuple[int, TableStats, R.RowWalker | None]:
        layout = layout_key(body, phl)
        if layout in self.walkers:
            walker = self.walkers[layout]
        else:
            try:
                tmap = parse_table_map(body, phl)
                walker = R.RowWalker(tmap)
            except RowFormatError:
                walker = None
            self.walkers[layout] = walker
        names = table_map_names(body, phl)[0]
        key = (names.schema, names.table)
        stats = self.tables.get(key)
        if stats is None:
            stats = self.tables[key] = TableStats(*key)
        return names.table_id, stats, walker

    def _rows_event(self, ev: Event, fde: FormatDescription, maps: dict) -> int:
        body = event_body(ev, fde)
        phl = post_header_len(fde, ev.type_code)
        mapped = maps.get(R.rows_table_id(body, phl))
        if mapped is None:
            return 0   # keys.py reports an unmapped table id as bad input
        stats, walker = mapped
        stats.bytes += len(ev.raw)
        db = self._database(stats.database)
        db.bytes += len(ev.raw)
        try:
            if walker is None:
                raise RowFormatError("table not walkable")
            rows = R.parse_rows_event(ev.type_code, body, phl)
            n = len(walker.images(rows, ()))
        except RowFormatError:
            stats.uncounted_events += 1
            return 0
        if rows.kind == R.UPDATE:
            n //= 2
            stats.updates += n
        elif rows.kind == R.WRITE:
            stats.inserts += n
        else:
            stats.deletes += n
        db.rows += n
        return n

    def _database(self, name: str) -> DatabaseStats:
        db = self.databases.get(name)
        if db is None:
            db = self.databases[name] = DatabaseStats(name)
        return db

    def _barrier(self, trx: Transaction) -> None:
        if not trx.is_barrier:
            return
        if trx.kind is TrxKind.DDL:
            reason = "DDL and other standalone statements"
            q = next((e.info for e in reversed(trx.events) if isinstance(e.info, QueryInfo)), None)
            if q is not None:
                sql = " ".join(q.sql_text.split())
                self.plan.ddl.append(StatementInfo(str(trx.start), trx.timestamp, q.db,
                                                   sql if len(sql) <= _SQL_KEPT else sql[:_SQL_KEPT - 3] + "..."))
        elif trx.uses_temporary_tables:
            reason = "statements on temporary tables"
        elif trx.non_transactional:
            reason = "non-transactional tables"
        elif trx.kind in (TrxKind.STATEMENT, TrxKind.MIXED):
            reason = "statement-based DML"
        else:
            reason = "empty transactions"
        self.plan.barriers[reason] = self.plan.barriers.get(reason, 0) + 1

    # -- parallelism -------------------------------------------------------------------

    def _simulate(self, trx: Transaction) -> None:
        self.schema.learn(trx.events, trx.fde)
        barrier = trx.is_barrier
        self.serial.feed(trx, {}, None)
        of = {mode: self.deps[mode].of(trx) for mode in MODES}
        if not barrier:   # what _table_keys answers while this transaction's batch may still be cut
            self._keys_by_seq[trx.seq] = frozenset(k for k in of["table"][0] if k != EVERYTHING)
        # A pair is tried when its second batch closes: older transactions are never asked about again.
        self._keys_by_seq.pop(trx.seq - 4 * BATCH.max_transactions, None)
        for mode in MODES:
            keys, after = of[mode]
            for sim in self.sims[mode]:
                sim.feed(trx, keys, after)
            self.paths[mode].add(trx.seq, keys, barrier, after, trx.size)
            if trx.kind is TrxKind.DDL:
                self.deps[mode].schema_changed()

    def _table_keys(self, trx: Transaction) -> frozenset:
        return self._keys_by_seq[trx.seq]

    def finish(self) -> None:
        plan = self.plan
        for key, stats in self.tables.items():
            stats.row_keys = self.schema.key_source.get(key, "TABLE_MAP not readable")
        plan.tables = sorted(self.tables.values(), key=lambda s: (-s.bytes, s.database, s.table))
        plan.databases = sorted(self.databases.values(), key=lambda d: (-d.bytes, d.database))
        plan.largest = [info for _, _, info in sorted(self.largest, key=lambda e: (-e[0], -e[1]))]
        serial = self.serial.close()
        plan.serial_groups = serial.groups
        for mode in MODES:
            cp = self.paths[mode].result()
            plan.modes.append(ModeEstimate(
                mode, [WorkerEstimate.of(sim.close(), serial.time_us) for sim in self.sims[mode]],
                cp.longest_chain, round(cp.path_us / cp.total_us, 4) if cp.total_us else 0.0, round(cp.bound, 2)))
        plan.row_key_notes = _row_key_notes(plan.tables)
        plan.recommendation = recommend(plan.modes)


def _row_key_notes(tables: list[TableStats]) -> list[str]:
    keyed = [t for t in tables if t.row_keys == "primary key" and t.rows]
    fallback = [t for t in tables if t.row_keys != "primary key" and t.rows]
    notes = []
    if keyed:
        notes.append(f"row mode keys {len(keyed)} table(s) by the primary key the binlog's TABLE_MAP metadata gives; "
                     "unique secondary keys and foreign keys are not in the binlog, so conflicts through them are "
                     "not seen here (replay reads them from the target: it may find less parallelism)")
    for t in fallback:
        notes.append(f"{t.database}.{t.table}: one key for the whole table here: {t.row_keys} "
                     "(replay keys it by the target's primary/unique keys: it may find more parallelism)")
    return notes


def recommend(modes: list[ModeEstimate]) -> Recommendation:
    """The fewest workers whose best mode is within GOOD_ENOUGH of the best simulated speed-up."""
    options = [(1, "row", 1.0)] + [(w.workers, m.mode, w.speedup) for m in modes for w in m.workers]
    best = max(options, key=lambda o: (o[2], -o[0]))
    order = {mode: i for i, mode in enumerate(MODES)}
    fits = [o for o in options if o[2] >= GOOD_ENOUGH * best[2]]
    workers, mode, speedup = min(fits, key=lambda o: (o[0], -o[2], order[o[1]]))
    if workers == 1:
        reason = (f"no mode finds parallelism worth more workers (best: {best[2]:.2f}x with {best[0]}, {best[1]}); "
                  f"one worker already applies up to {BATCH.max_transactions:,} transactions per commit")
    elif (workers, mode) == best[:2]:
        reason = f"the best simulated speed-up ({speedup:.1f}x)"
    else:
        reason = (f"{speedup:.1f}x simulated, within {round((1 - GOOD_ENOUGH) * 100)}% of the best "
                  f"({best[2]:.1f}x with {best[0]} workers, {best[1]}), with fewer workers")
    return Recommendation(workers, mode, speedup, reason)
