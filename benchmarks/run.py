#!/usr/bin/env python3
"""Benchmark: the same binlog replayed by `mariadb-binlog | mariadb` and by binreplay, in one run.

Builds the shop database on a sandbox source, takes a mariadb-dump backup, runs the
workload, restores the backup into a fresh target for every method, times each method,
and verifies each target against the source table by table (a fast wrong run does not count).

    python benchmarks/run.py --transactions 20000 [--relaxed] [--out benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from binreplay.backup_meta import read_backup_coordinates
from binreplay.compare import compare_servers
from binreplay.demo import pipe_replay, restore, take_backup
from binreplay.progress import make_reporter
from binreplay.reader import BinlogReader
from binreplay.replay import ReplayOptions, run_replay
from binreplay.sandbox import create_sandbox
from binreplay.target import TargetConfig
from binreplay.workload import create_base, run_workload


def fresh_target(base: Path, name: str, backup: Path, relaxed: bool):
    options = {"innodb_flush_log_at_trx_commit": "2" if relaxed else "1", "innodb_buffer_pool_size": "512M"}
    t = create_sandbox(base / name, name=name, server_id=100 + len(name), options=options, die_with_parent=True)
    restore(t, backup)
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transactions", type=int, default=20000)
    ap.add_argument("--relaxed", action="store_true", help="target innodb_flush_log_at_trx_commit=2")
    ap.add_argument("--out", type=Path, help="append a results section to this Markdown file")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="binreplay-bench-"))
    results: list[tuple[str, float, int, str]] = []
    try:
        source = create_sandbox(base / "source", name="source", server_id=1, log_bin=True,
                                options={"innodb_flush_log_at_trx_commit": "2", "sync_binlog": "0"},
                                die_with_parent=True)
        with source.connect() as c:
            create_base(c)
        backup = base / "backup.sql"
        take_backup(source, backup)
        coords = read_backup_coordinates(backup)
        t0 = time.monotonic()
        with source.connect() as c:
            run_workload(c, args.transactions, rotate_every=max(args.transactions // 4, 1),
                         ddl_at=args.transactions // 2)
        gen = time.monotonic() - t0
        source.execute("FLUSH BINARY LOGS")
        files = [f for f in source.binlog_files() if f.name >= (coords.binlog_file or "")]
        size = sum(f.stat().st_size for f in files)
        t0 = time.monotonic()
        reader = BinlogReader(files, start_pos=coords.position)
        ntrx = sum(1 for _ in reader.transactions())
        read_s = time.monotonic() - t0
        print(f"workload: {ntrx} transactions, {size / 1e6:.1f} MB of binlog, generated in {gen:.1f}s; "
              f"reader alone: {read_s:.2f}s ({reader.stats.events / read_s:.0f} events/s)", flush=True)

        def verify(t) -> str:
            with source.connect() as ref, t.connect() as c:
                d = compare_servers(ref, c)
            return "identical" if not d else f"{len(d)} DIFFERENCES"

        t = fresh_target(base, "pipe", backup, args.relaxed)
        secs = pipe_replay(source, t, files, coords.position or 4)
        results.append(("`mariadb-binlog \\| mariadb`", secs, ntrx, verify(t)))
        t.stop()
        t = fresh_target(base, "binreplay", backup, args.relaxed)
        t0 = time.monotonic()
        summary = run_replay(ReplayOptions(binlogs=files, target=TargetConfig(socket=str(t.socket), user="root"),
                                           from_backup=backup), make_reporter("none"))
        results.append(("binreplay --workers 1 (serial)", time.monotonic() - t0, summary.applied, verify(t)))
        t.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        pipe_s = results[0][1]
        lines = [
            f"### {args.transactions} shop transactions, target {'relaxed (flush_log_at_trx_commit=2)' if args.relaxed else 'durable (flush_log_at_trx_commit=1)'}",
            "",
            f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
            f"{subprocess.run(['mariadbd', '--version'], capture_output=True, text=True).stdout.strip()}",
            f"Command: `python benchmarks/run.py --transactions {args.transactions}{' --relaxed' if args.relaxed else ''}`",
            f"Binlog: {ntrx} transactions, {size / 1e6:.1f} MB; reader alone {read_s:.2f}s "
            f"({reader.stats.events / read_s:.0f} events/s); peak RSS of the benchmark process {rss:.0f} MB",
            "",
            "| method | seconds | transactions/s | vs pipe | content |",
            "|---|---:|---:|---:|---|",
        ]
        for label, secs, n, verdict in results:
            lines.append(f"| {label} | {secs:.2f} | {n / secs:.0f} | {pipe_s / secs:.2f}x | {verdict} |")
        text = "\n".join(lines) + "\n"
        print(text)
        if args.out:
            with open(args.out, "a") as f:
                f.write("\n" + text)
        return 0 if all(r[3] == "identical" for r in results) else 1
    finally:
        subprocess.run(["pkill", "-f", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
