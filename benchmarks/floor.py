#!/usr/bin/env python3
"""The floor: what the target server itself needs to apply a workload's row events, no Python in the way.

binreplay's default apply sends each batch (up to 1,000 source transactions or 4 MiB) as one
target transaction holding one `BINLOG '<base64>'` statement (apply/encoders.py: rows_statement,
row events merged on MariaDB). This script builds exactly those statements once, before any
timing, into SQL files, and feeds them to a fresh restored target with the `mariadb` C client:

  floor-1    one file, one client: every batch as `BEGIN; BINLOG '...'; COMMIT;` in source order
             (what binreplay sends at --workers 1, without its progress rows and session setup)
  floor-N    the row events split by table into N files (tables assigned greedily by bytes), fed
             by N clients at once, each grouping 1,000 source transactions per commit: an
             optimistic lower bound for N-way parallel apply that ignores cross-table order
             (--split 2,4 for floor-2 and floor-4; 2 by default). On a workload whose
             transactions each change one table (bulk) that order is exact, and floor-N is what
             the best client tool could do with N sessions

In the same run, on fresh copies of the same restored target: the pipe, MariaDB's parallel
replication (conservative and optimistic, 8 threads: "MariaDB best" is the faster) and binreplay
with default flags. Every target is compared with the source. If even the floor is above 0.1 x
the pipe (or 0.5 x MariaDB best), binreplay cannot reach 10x the pipe (2x MariaDB best) on this
machine: the target's own work is already more than that. It also times binreplay's start-up (the
interpreter and the imports of `replay`, before any statement): a floor plus that start-up above
MariaDB best means no binreplay can be as fast as MariaDB's own applier on that workload.

    python benchmarks/floor.py [--workload oltp] [--scale F] [--repeat N] [--split 2,4] [--skip-methods]

Only row-only selections (every transaction row events, no DDL or statements): other workloads
are refused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import run as bench_run  # noqa: E402
from results import Method, methods_for  # noqa: E402
from workloads import BY_NAME  # noqa: E402

from binreplay.apply.encoders import _merged, merges_rows, rows_statement  # noqa: E402
from binreplay.apply.packets import binlog_statement  # noqa: E402
from binreplay.binlog import constants as C  # noqa: E402
from binreplay.binlog.file import BinlogFile  # noqa: E402
from binreplay.binlog.header import post_header_len  # noqa: E402
from binreplay.model import Transaction, TrxKind  # noqa: E402
from binreplay.schedule.limits import BatchLimits  # noqa: E402
from binreplay.source.reader import BinlogReader  # noqa: E402

ROWS_OR_MAP = C.ROWS_EVENTS | {C.TABLE_MAP_EVENT}


@dataclass
class FloorFiles:
    single: Path                        # floor-1's SQL
    split: dict[int, list[Path]]        # floor-N's SQL, one per client
    statements: int                     # BINLOG statements in floor-1 (= binreplay's batches)
    transactions: int
    table_sets: dict[int, list[list[str]]]   # floor-N: which tables each client applies


def _stmt(sql: bytes) -> bytes:
    return sql + b";\n"


def _table_of_events(trx: Transaction) -> list[tuple[str, int, memoryview]]:
    """(table, type, raw) of each TABLE_MAP and rows event of a row-only transaction."""
    view, base = memoryview(trx.data), trx.base
    id_len = 4 if post_header_len(trx.fde, C.TABLE_MAP_EVENT) == 6 else 6
    names: dict[bytes, str] = {}
    out = []
    for t, s, e in trx.spans:
        if t not in ROWS_OR_MAP:
            continue
        raw = view[s - base:e - base]
        table_id = bytes(raw[C.HEADER_LEN:C.HEADER_LEN + id_len])
        if t == C.TABLE_MAP_EVENT:
            at = C.HEADER_LEN + id_len + 2           # table id, flags
            db_len = raw[at]
            db = bytes(raw[at + 1:at + 1 + db_len]).decode()
            at += 1 + db_len + 1                     # the name, its NUL
            tb_len = raw[at]
            names[table_id] = f"{db}.{bytes(raw[at + 1:at + 1 + tb_len]).decode()}"
        out.append((names[table_id], t, raw))
    return out


def build(files: list[Path], start_pos: int, out_dir: Path, clients: tuple[int, ...] = (2,)) -> FloorFiles:
    """The SQL files of the floors (floor-1, and floor-N for each N of `clients`), from the binlog as
    binreplay reads it."""
    fde_raw = next(BinlogFile(files[0]).events()).raw
    limits = BatchLimits()
    trxs = list(BinlogReader(files, start_pos=start_pos).transactions())
    bad = [t for t in trxs if t.kind not in (TrxKind.ROWS, TrxKind.EMPTY)]
    if bad:
        raise SystemExit(f"the floor is for row-only selections: {len(bad)} transaction(s) are not (first: "
                         f"{bad[0].kind.value} at {bad[0].start})")
    merge = merges_rows("mariadb")
    # floor-1: the batches binreplay forms (transactions and bytes per commit, cut at a file's end).
    single = out_dir / "floor-1.sql"
    statements = 0
    with open(single, "wb") as out:
        out.write(_stmt(binlog_statement([fde_raw])))
        batch: list[Transaction] = []
        batch_bytes = 0

        def flush() -> None:
            nonlocal statements, batch, batch_bytes
            if batch:
                sql = rows_statement(batch, merge)
                assert sql is not None, "a row-only batch within the byte limit has one statement"
                if sql:
                    out.write(b"BEGIN;\n" + _stmt(sql) + b"COMMIT;\n")
                    statements += 1
            batch, batch_bytes = [], 0

        for trx in trxs:
            if batch and (len(batch) >= limits.max_transactions
                          or batch_bytes + trx.size > limits.max_bytes
                          or trx.file_index != batch[-1].file_index):
                flush()
            batch.append(trx)
            batch_bytes += trx.size
        flush()
    per_trx = [_table_of_events(t) for t in trxs]
    split, sets = {}, {}
    for n in clients:
        split[n], sets[n] = _split_by_table(trxs, per_trx, n, fde_raw, out_dir, limits)
    return FloorFiles(single, split, statements, len(trxs), sets)


def _split_by_table(trxs: list[Transaction], per_trx: list[list[tuple[str, int, memoryview]]], clients: int,
                    fde_raw: bytes, out_dir: Path, limits: BatchLimits) -> tuple[list[Path], list[list[str]]]:
    """floor-N: tables split between N clients (greedy by bytes), each client's events grouped."""
    weight: dict[str, int] = {}
    for events in per_trx:
        for table, _t, raw in events:
            weight[table] = weight.get(table, 0) + len(raw)
    sets: list[list[str]] = [[] for _ in range(clients)]
    loads = [0] * clients
    for table in sorted(weight, key=lambda name: -weight[name]):
        i = loads.index(min(loads))
        sets[i].append(table)
        loads[i] += weight[table]
    client_of = {table: i for i, tables in enumerate(sets) for table in tables}
    split = [out_dir / f"floor-{clients}-{i}.sql" for i in range(clients)]
    with ExitStack() as stack:
        outs = [stack.enter_context(open(p, "wb")) for p in split]
        for f in outs:
            f.write(_stmt(binlog_statement([fde_raw])))
        groups: list[list[tuple[int, memoryview]]] = [[] for _ in range(clients)]
        sizes = [0] * clients

        def flush_client(i: int) -> None:
            if groups[i]:
                blob = _merged(groups[i], trxs[0].fde)
                sql = binlog_statement([blob] if blob is not None else [raw for _t, raw in groups[i]])
                outs[i].write(b"BEGIN;\n" + _stmt(sql) + b"COMMIT;\n")
            groups[i], sizes[i] = [], 0

        for n, events in enumerate(per_trx):
            for table, t, raw in events:
                i = client_of[table]
                groups[i].append((t, raw))
                sizes[i] += len(raw)
            if (n + 1) % limits.max_transactions == 0 or any(s > limits.max_bytes for s in sizes):
                for i in range(clients):
                    flush_client(i)
        for i in range(clients):
            flush_client(i)
    return split, sets


@dataclass
class Fed:
    seconds: float
    client_cpu_s: float
    target_cpu_s: float | None
    verdict: str


def startup_seconds(env: dict[str, str], repeat: int) -> float:
    """Median wall time of `python -m binreplay replay --help`: the interpreter's start and the imports of
    the replay path, which binreplay pays before its first statement and a C client does not."""
    runs = []
    for _ in range(repeat):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "binreplay", "replay", "--help"], cwd=bench_run.ROOT, env=env,
                       stdout=subprocess.DEVNULL, check=True)
        runs.append(time.monotonic() - t0)
    return sorted(runs)[len(runs) // 2]


def feed(t, sql_files: list[Path], log: Path) -> tuple[float, float]:
    """All files at once, one `mariadb` client each: wall time to the last exit, clients' CPU."""
    args = ["mariadb", *bench_run.local(t).mariadb_args(), "--max-allowed-packet=256M"]
    with ExitStack() as stack:
        err = stack.enter_context(open(log, "wb"))
        inputs = [stack.enter_context(open(f, "rb")) for f in sql_files]
        t0 = time.monotonic()
        procs = [subprocess.Popen(args, stdin=f, stdout=subprocess.DEVNULL, stderr=err) for f in inputs]
        cpu = 0.0
        for p in procs:
            _pid, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            cpu += usage.ru_utime + usage.ru_stime
        seconds = time.monotonic() - t0
    if any(p.returncode for p in procs):
        raise RuntimeError(f"mariadb failed: {log.read_text()[-300:]}")
    return seconds, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="oltp", help="a row-only workload of workloads.py (default oltp)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each floor and of each method but the pipe "
                                                          "(median reported)")
    ap.add_argument("--split", default="2", help="floor-N for each N (comma-separated, default 2): the row "
                                                 "events split by table between N clients")
    ap.add_argument("--skip-methods", action="store_true", help="only the floors (no pipe, MariaDB, binreplay)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="brfloor-", dir="/tmp"))
    bench = bench_run.Bench(bench_run.parse_args(["--quick", "--scale", str(args.scale)]), base)
    log = bench.log
    try:
        prep = bench.prepare(BY_NAME[args.workload])
        t0 = time.monotonic()
        splits = tuple(int(n) for n in args.split.split(","))
        floor = build(prep.files, prep.coords.position, base, splits)
        log(f"floor SQL built in {time.monotonic() - t0:.1f}s: {floor.transactions} transactions, "
            f"{floor.statements} BINLOG statements ({floor.single.stat().st_size / 1e6:.1f} MB)")
        for n, sets in floor.table_sets.items():
            log(f"floor-{n} split: " + "; ".join(f"client {i}: {', '.join(s)}" for i, s in enumerate(sets)))
        rows: list[tuple[str, Fed]] = []
        if not args.skip_methods:
            keys = ("pipe", "mariadb-conservative-8", "mariadb-optimistic-8", "binreplay-default")
            for m in [m for m in methods_for(True, [], []) if m.key in keys]:
                # The same number of runs as each floor (median): sub-second methods move by +-0.3 s here.
                fed = []
                for _ in range(args.repeat if m.key != "pipe" else 1):
                    r = bench.run_method(prep, m, False)
                    u = r.usage
                    fed.append(Fed(r.seconds or float("nan"), u.client_cpu_s or 0.0, u.target_cpu_s, r.verdict))
                    log(f"  {m.key:<24} {r.seconds}  {r.verdict}")
                mid = sorted(fed, key=lambda f: f.seconds)[len(fed) // 2]
                if len(fed) > 1:
                    mid.verdict = f"{mid.verdict}; runs {', '.join(f'{f.seconds:.2f}' for f in fed)}"
                rows.append((m.key, mid))
        floor_method = Method("floor", "floor", "pipe")
        floors = [("floor-1", [floor.single])] + [(f"floor-{n}", files) for n, files in floor.split.items()]
        for name, sql in floors:
            runs = []
            for n in range(args.repeat):
                t = bench.fresh_target(prep, floor_method, False, tag=f"-{name}-{n}")
                try:
                    cpu0 = bench_run.server_cpu(t)
                    seconds, client_cpu = feed(t, sql, base / f"{t.name}.stderr")
                    cpu1 = bench_run.server_cpu(t)
                    verdict = bench.verify(prep.source, t)
                    target_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
                    runs.append(Fed(seconds, client_cpu, target_cpu, verdict))
                    log(f"  {name} run {n + 1}: {seconds:.2f}s (target CPU {target_cpu:.2f}s)  {verdict}")
                finally:
                    bench.servers.discard(t)
            best = sorted(runs, key=lambda f: f.seconds)[len(runs) // 2]
            best.verdict = f"{best.verdict}; runs {', '.join(f'{f.seconds:.2f}' for f in runs)}"
            rows.append((name, best))
        by = dict(rows)
        print(f"\nfloor, {args.workload} ({floor.transactions} transactions), load average "
              f"{os.getloadavg()[0]:.2f}:")
        print("| method | seconds | client CPU s | target CPU s | content |")
        print("|---|---:|---:|---:|---|")
        for name, f in rows:
            tcpu = f"{f.target_cpu_s:.2f}" if f.target_cpu_s is not None else "—"
            print(f"| {name} | {f.seconds:.2f} | {f.client_cpu_s:.2f} | {tcpu} | {f.verdict} |")
        startup = startup_seconds(bench.env, args.repeat)
        print(f"binreplay start-up (`python -m binreplay replay --help`, median of {args.repeat}): {startup:.2f}s")
        if "pipe" in by:
            pipe = by["pipe"].seconds
            best = min(by["mariadb-conservative-8"].seconds, by["mariadb-optimistic-8"].seconds)
            for name, _sql in floors:
                s = by[name].seconds
                print(f"{name}: {s:.2f}s = {s / pipe:.3f} x pipe (target 10x needs <= 0.1), "
                      f"{s / best:.2f} x MariaDB best (2x needs <= 0.5); with binreplay's start-up "
                      f"{s + startup:.2f}s = {(s + startup) / best:.2f} x MariaDB best (not slower needs <= 1)")
        return 0
    finally:
        bench.servers.close()
        if args.keep:
            print(f"work directory kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
