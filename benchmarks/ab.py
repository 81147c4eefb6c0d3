#!/usr/bin/env python3
"""Compare binreplay variants (flags, environment) and native methods on one workload, interleaved.

`run.py` times each method once per run; on a 2-core machine shared with other jobs a single
sub-second timing moves by +-0.3 s, too much to tell whether a change pays. This tool prepares a
workload once (as run.py does: source, backup, binlog, restored template) and then runs every
variant N times, round-robin, each on a fresh copy of the template, content verified after each,
and prints per variant the median, minimum and maximum seconds and the median CPU seconds of the
client and of the target server.

    python benchmarks/ab.py --workload bulk --rounds 6 -- mariadb-optimistic-8 "" "--no-early-apply"
    python benchmarks/ab.py --workload oltp --workdir /tmp/ab-oltp -- "" "--workers 1"   # kept, reused

A variant is a method key of run.py (`pipe`, `mariadb-serial`, `mariadb-conservative-8`,
`mariadb-optimistic-8`) or binreplay flags in one shell-quoted string ("" = default flags), which may
start with NAME=VALUE words put in binreplay's environment (`--` ends ab.py's own options).
`--workdir DIR` keeps the prepared workload in DIR and reuses it on the next call with the same
workload (the binreplay code is the working tree's at each run). Nothing is appended to RESULTS.md:
these numbers are for deciding, run.py's are the record.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import run as harness  # noqa: E402
from results import Method, Result, methods_for  # noqa: E402
from workloads import BY_NAME  # noqa: E402

from binreplay.devtools.sandbox import create_sandbox  # noqa: E402
from binreplay.source.backup_meta import read_backup_coordinates  # noqa: E402

STATE = "prepared.json"


@dataclass
class Variant:
    label: str
    method: Method
    env: dict[str, str] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)


def parse_variant(index: int, text: str) -> Variant:
    native = {m.key: m for m in methods_for(True, None, None) if m.kind != "binreplay"}
    if text in native:
        return Variant(text, native[text])
    words = shlex.split(text)
    env = {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return Variant(f"binreplay {text}".strip(), Method(f"ab{index}", text, "binreplay",
                                                      flags=tuple(words)), env)


def prepared(bench: harness.Bench, workload: str, workdir: Path) -> harness.Prepared:
    """The workload prepared in `workdir`: reused when its state file says so, else built and recorded."""
    wl = BY_NAME[workload]
    state_path = workdir / STATE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state["workload"] == workload:
            source = create_sandbox(workdir / f"{workload}-src", name=f"{workload}-src", server_id=1, log_bin=True,
                                    options=harness.SOURCE_OPTIONS, start=False, die_with_parent=True)
            bench.servers.all.append(source)
            source.start(timeout=180)
            template = create_sandbox(workdir / f"{workload}-tmpl", name=f"{workload}-tmpl",
                                      options=harness.target_options(False), start=False)
            backup = Path(state["backup"])
            bench.log(f"{workload}: reusing the workload prepared in {workdir}")
            return harness.Prepared(wl, wl.scale(True, 1.0), source, backup, read_backup_coordinates(backup),
                                    [Path(f) for f in state["files"]], template, state["setup_s"],
                                    state["source_s"])
    prep = bench.prepare(wl)
    state_path.write_text(json.dumps({"workload": workload, "backup": str(prep.backup),
                                      "files": [str(f) for f in prep.files], "setup_s": prep.setup_s,
                                      "source_s": prep.source_s}))
    return prep


def median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.2f}" if known else "—"


def report(variants: list[Variant]) -> str:
    lines = ["| variant | median s | min s | max s | client CPU s | target CPU s | runs | content |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for v in variants:
        secs = [r.seconds for r in v.results if r.ok and r.seconds is not None]
        bad = [r.verdict for r in v.results if not r.ok]
        lines.append(
            f"| {v.label} | {median(secs)} | {min(secs, default=0):.2f} | {max(secs, default=0):.2f} "
            f"| {median([r.usage.client_cpu_s for r in v.results])} "
            f"| {median([r.usage.target_cpu_s for r in v.results])} "
            f"| {len(v.results)} | {bad[0][:80] if bad else 'identical'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", help="method keys or quoted binreplay flags (\"\" = default flags)")
    ap.add_argument("--workload", default="oltp", choices=sorted(BY_NAME))
    ap.add_argument("--rounds", type=int, default=5, help="runs of every variant (default 5)")
    ap.add_argument("--workdir", help="keep the prepared workload here and reuse it (default: a temporary "
                                      "directory, removed)")
    ap.add_argument("--relaxed", action="store_true", help="targets with innodb_flush_log_at_trx_commit=2")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    # What Bench.prepare and Bench.apply read.
    args.quick, args.scale, args.restore_each = True, 1.0, False
    signal.signal(signal.SIGTERM, harness._terminate)
    variants = [parse_variant(i, v) for i, v in enumerate(args.variants)]
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="brab-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = harness.Bench(args, workdir)
    base_env = bench.env
    try:
        prep = prepared(bench, args.workload, workdir)
        for n in range(1, args.rounds + 1):
            for v in variants:
                bench.env = dict(base_env, **v.env)
                r = bench.run_method(prep, v.method, args.relaxed)
                v.results.append(r)
                cpu = r.usage.client_cpu_s
                bench.log(f"round {n} {v.label:<40} {harness.bench_report.secs(r.seconds):>8}  "
                          f"client CPU {cpu if cpu is None else f'{cpu:.2f}'}  {r.verdict[:100]}")
        code = harness.bench_report.code_version(harness.ROOT)
        print(f"\n{args.workload}, {args.rounds} rounds, interleaved, "
              f"{'relaxed' if args.relaxed else 'durable'} target, code {code}\n")
        print(report(variants))
        return 1 if any(not r.ok for v in variants for r in v.results) else 0
    finally:
        bench.servers.close()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"workload kept in {workdir} (pass --workdir {workdir} again to reuse it)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
