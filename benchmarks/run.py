#!/usr/bin/env python3
"""Benchmark: the same binlog replayed by every method, in one run, every result verified.

For each workload (see workloads.py): a sandbox source (binlog ROW, binlog_row_metadata=FULL)
gets its data, a `mariadb-dump --single-transaction --master-data=2 --gtid` backup is taken,
then concurrent clients generate the binlog on a durable source (so its group commit groups).
The backup is restored once into a template target, which is shut down cleanly
(innodb_fast_shutdown=0) and copied for every method: each method starts on a fresh server
with the identical restored datadir and a warm buffer pool (the load of the dumped buffer
pool is awaited), so restore time and restore noise stay out of the measurement.
(`--restore-each` restores the dump into every target instead.)

Methods, all on the same binlog:
  pipe              mariadb-binlog --start-position=P files... | mariadb
  mariadb-*         MariaDB's own replication SQL thread fed the binlogs as relay logs
                    (the relay-log trick, see mariadb_parallel.py): serial, and 8 threads
                    conservative / optimistic
  binreplay-D-W     run_replay(workers=W, dependency=D) in this process
  binreplay CLI     `python -m binreplay replay ... --progress none` as a subprocess, once,
                    on the largest binlog: its peak RSS (wait4) is reported

After each method the target is compared with the source table by table (compare_servers);
a run whose content differs is WRONG and gets no speed-up.

    python benchmarks/run.py [--quick] [--out benchmarks/RESULTS.md] [--chart benchmarks/results.png]
                             [--relaxed | --durability durable|relaxed|both] [--workloads oltp,hot]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from binreplay.source.backup_meta import read_backup_coordinates  # noqa: E402
from binreplay.devtools.compare import compare_servers  # noqa: E402
from binreplay.devtools.demo import pipe_replay, restore  # noqa: E402
from binreplay.errors import Interrupted  # noqa: E402
from binreplay.model import MariadbGtid  # noqa: E402
from binreplay.report.progress import make_reporter  # noqa: E402
from binreplay.source.reader import BinlogReader  # noqa: E402
from binreplay.devtools.sandbox import Sandbox, create_sandbox  # noqa: E402
from binreplay.server.connection import ServerConfig  # noqa: E402

import mariadb_parallel  # noqa: E402
from workloads import BY_NAME, WORKLOADS, Workload  # noqa: E402

SOURCE_OPTIONS = {"innodb_buffer_pool_size": "512M", "innodb_log_file_size": "256M"}


def target_options(relaxed: bool) -> dict[str, str | None]:
    return {
        "innodb_flush_log_at_trx_commit": "2" if relaxed else "1",
        "innodb_buffer_pool_size": "512M",
        "innodb_log_file_size": "256M",
        "innodb_buffer_pool_dump_pct": "100",
    }


# ---- methods ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Method:
    key: str
    label: str
    kind: str                    # pipe | mariadb | binreplay
    threads: int = 0             # mariadb: slave_parallel_threads; binreplay: workers
    mode: str = ""               # mariadb: slave_parallel_mode; binreplay: dependency


def methods_for(quick: bool, dependencies: list[str] | None, workers: list[int] | None) -> list[Method]:
    ms = [
        Method("pipe", "`mariadb-binlog \\| mariadb`", "pipe"),
        Method("mariadb-serial", "MariaDB SQL thread, serial (relay-log trick)", "mariadb", 0, "none"),
        Method("mariadb-conservative-8", "MariaDB parallel, conservative, 8 threads", "mariadb", 8, "conservative"),
        Method("mariadb-optimistic-8", "MariaDB parallel, optimistic, 8 threads", "mariadb", 8, "optimistic"),
    ]
    if dependencies or workers:
        combos = [(d, w) for d in (dependencies or ["row", "table", "commit-order"])
                  for w in (workers or [1, 2, 4, 8, 16])]
    elif quick:
        combos = [("row", 1), ("row", 4), ("row", 8), ("commit-order", 8)]
    else:
        combos = [(d, w) for d in ("row", "table", "commit-order") for w in (1, 2, 4, 8, 16)]
    for d, w in combos:
        ms.append(Method(f"binreplay-{d}-{w}", f"binreplay --workers {w} --dependency {d}", "binreplay", w, d))
    return ms


@dataclass
class Result:
    method: Method
    seconds: float | None
    verdict: str                 # identical | WRONG: ... | FAILED: ...
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "identical" and self.seconds is not None


@dataclass
class WorkloadRun:
    workload: Workload
    durability: str
    transactions: int = 0
    binlog_bytes: int = 0
    binlog_files: int = 0
    events: int = 0
    source_seconds: float = 0.0
    groups: int = 0
    grouped_trx: int = 0
    reader_seconds: float = 0.0
    setup_seconds: float = 0.0
    results: list[Result] = field(default_factory=list)

    def pipe_seconds(self) -> float | None:
        for r in self.results:
            if r.method.kind == "pipe" and r.ok:
                return r.seconds
        return None


# ---- sandboxes --------------------------------------------------------------------------------------

class Servers:
    """Every sandbox this run started; all are stopped in `close` (or killed if they will not stop)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.all: list[Sandbox] = []
        self._ids = 100

    def start(self, dirname: str, *, log_bin: bool = False, server_id: int | None = None,
              options: dict[str, str | None] | None = None) -> Sandbox:
        if server_id is None:
            self._ids += 1
            server_id = self._ids
        s = create_sandbox(self.base / dirname, name=dirname.replace("/", "_"), server_id=server_id,
                           log_bin=log_bin, options=options, start=False, die_with_parent=True)
        self.all.append(s)
        s.start(timeout=180)
        return s

    def discard(self, s: Sandbox) -> None:
        self.stop(s)
        if s in self.all:
            self.all.remove(s)
        shutil.rmtree(s.basedir, ignore_errors=True)

    @staticmethod
    def stop(s: Sandbox) -> None:
        try:
            s.stop(timeout=60)
        except Exception:  # noqa: BLE001
            s.kill()

    def close(self) -> None:
        for s in reversed(self.all):
            try:
                self.stop(s)
            except Exception as exc:  # noqa: BLE001
                print(f"[bench] could not stop {s.name}: {exc}", file=sys.stderr)
        self.all.clear()


def wait_buffer_pool_loaded(s: Sandbox, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = s.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_load_status'")
        status = str(rows[0][1]) if rows else ""
        if "completed" in status or "not found" in status.lower() or "Cannot open" in status:
            return
        time.sleep(0.05)


# ---- one workload -------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, base: Path) -> None:
        self.args = args
        self.base = base
        self.servers = Servers(base)

    def log(self, msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def prepare(self, wl: Workload) -> dict:
        """Source, data, backup, binlog, template target. Returns the workload's context."""
        scale = wl.scale(self.args.quick)
        self.log(f"{wl.name}: building the data ({wl.title})")
        source = self.servers.start(f"{wl.name}-src", log_bin=True, server_id=1, options=SOURCE_OPTIONS)
        t0 = time.monotonic()
        source.execute("SET GLOBAL innodb_flush_log_at_trx_commit=2, sync_binlog=0")
        wl.setup(source, scale)
        setup_s = time.monotonic() - t0
        backup = self.base / f"{wl.name}-backup.sql"
        with open(backup, "wb") as out:
            subprocess.run(["mariadb-dump", *source.client_args(), "--single-transaction", "--master-data=2",
                            "--gtid", "--routines", "--triggers", "--events", "--databases", *wl.databases],
                           stdout=out, check=True)
        coords = read_backup_coordinates(backup)
        assert coords.binlog_file and coords.position, coords
        # A durable source, as in production: its binlog group commit then really groups.
        source.execute("SET GLOBAL innodb_flush_log_at_trx_commit=1, sync_binlog=1")
        self.log(f"{wl.name}: backup at {coords.binlog_file}:{coords.position}; generating {scale.transactions} "
                 f"transactions from {scale.clients} clients")
        t0 = time.monotonic()
        wl.run(source, scale)
        source_s = time.monotonic() - t0
        source.execute("FLUSH BINARY LOGS")
        files = [f for f in source.binlog_files() if f.name >= coords.binlog_file]
        # The template: the backup restored once, shut down clean, copied for every method.
        template = None
        if not self.args.restore_each:
            template = self.servers.start(f"{wl.name}-tmpl", options=target_options(False))
            t0 = time.monotonic()
            restore(template, backup)
            template.execute("SET GLOBAL innodb_fast_shutdown=0")
            self.servers.stop(template)
            self.log(f"{wl.name}: template target restored in {time.monotonic() - t0:.1f}s")
        return {"source": source, "backup": backup, "coords": coords, "files": files, "template": template,
                "setup_s": setup_s, "source_s": source_s, "scale": scale}

    def binlog_stats(self, wl: Workload, ctx: dict, durability: str) -> WorkloadRun:
        files, coords = ctx["files"], ctx["coords"]
        run = WorkloadRun(wl, durability, source_seconds=ctx["source_s"], setup_seconds=ctx["setup_s"])
        run.binlog_files = len(files)
        run.binlog_bytes = sum(f.stat().st_size for f in files) - coords.position
        last_cid = object()
        for trx in BinlogReader(files, start_pos=coords.position).transactions():
            run.transactions += 1
            cid = trx.gtid.commit_id if isinstance(trx.gtid, MariadbGtid) else None
            if cid is None or cid != last_cid:
                run.groups += 1
            if cid is not None:
                run.grouped_trx += 1
            last_cid = cid
        # The reader alone, over the whole binlog as often as needed for a second's worth of timing.
        passes, elapsed = 0, 0.0
        while elapsed < 1.0 or passes < 1:
            reader = BinlogReader(files, start_pos=coords.position)
            t0 = time.monotonic()
            for _ in reader.transactions():
                pass
            elapsed += time.monotonic() - t0
            passes += 1
        run.reader_seconds = elapsed / passes
        run.events = reader.stats.events
        return run

    def fresh_target(self, wl: Workload, ctx: dict, m: Method, relaxed: bool) -> Sandbox:
        dirname = f"{wl.name}-{m.key}-{'r' if relaxed else 'd'}"
        options = target_options(relaxed)
        if m.kind == "mariadb":
            base = ctx["files"][0].name.rsplit(".", 1)[0]
            options |= mariadb_parallel.relay_options(self.base / dirname, base)
        if ctx["template"] is not None:
            dest = self.base / dirname
            shutil.copytree(ctx["template"].datadir, dest / "data", symlinks=True)
            (dest / ".initialized").touch()
            t = self.servers.start(dirname, options=options)
            wait_buffer_pool_loaded(t)
        else:
            t = self.servers.start(dirname, options=options)
            restore(t, ctx["backup"])
        return t

    def verify(self, source: Sandbox, t: Sandbox) -> str:
        with source.connect() as ref, t.connect() as c:
            diffs = compare_servers(ref, c)
        if not diffs:
            return "identical"
        return f"WRONG: {len(diffs)} table(s) differ, e.g. {diffs[0]}"

    def run_method(self, wl: Workload, ctx: dict, m: Method, relaxed: bool) -> Result:
        files, coords, source = ctx["files"], ctx["coords"], ctx["source"]
        t = self.fresh_target(wl, ctx, m, relaxed)
        note = ""
        try:
            try:
                if m.kind == "pipe":
                    secs = pipe_replay(source, t, files, coords.position)
                elif m.kind == "mariadb":
                    secs = mariadb_parallel.replay(t, files, coords.binlog_file, coords.position,
                                                   threads=m.threads, mode=m.mode)
                else:
                    from binreplay.run import ReplayOptions, run_replay
                    opts = ReplayOptions(binlogs=files, target=ServerConfig(socket=str(t.socket), user="root"),
                                         from_backup=ctx["backup"], workers=m.threads, dependency=m.mode)
                    t0 = time.monotonic()
                    summary = run_replay(opts, make_reporter("none"))
                    secs = time.monotonic() - t0
                    if summary.outcome != "complete":
                        raise RuntimeError(f"outcome {summary.outcome}")
                    note = f"{summary.applied} applied"
            except Interrupted:
                raise            # SIGINT/SIGTERM reached binreplay's handler: stop the benchmark
            except Exception as exc:  # noqa: BLE001 - a failing method is a result, not the end of the run
                if self.args.verbose:
                    traceback.print_exc()
                return Result(m, None, f"FAILED: {type(exc).__name__}: {str(exc)[:300]}")
            return Result(m, secs, self.verify(source, t), note)
        finally:
            self.servers.discard(t)

    def run_repeated(self, wl: Workload, ctx: dict, m: Method, relaxed: bool) -> Result:
        """`--repeat N`: N fresh targets; the median time, and any wrong or failed run decides the verdict."""
        results = [self.run_method(wl, ctx, m, relaxed) for _ in range(self.args.repeat)]
        bad = next((r for r in results if not r.ok), None)
        if bad is not None or len(results) == 1:
            return bad or results[0]
        times = sorted(r.seconds for r in results if r.seconds is not None)
        median = times[len(times) // 2] if len(times) % 2 else (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2
        return Result(m, median, "identical", f"median of {len(times)}: {', '.join(f'{t:.2f}' for t in times)}")

    def rss_run(self, wl: Workload, ctx: dict, relaxed: bool) -> tuple[Result, float | None]:
        """binreplay as a subprocess (the CLI), to read its own peak RSS with wait4."""
        files, source = ctx["files"], ctx["source"]
        workers, dependency = self.args.rss_config
        m = Method(f"cli-{dependency}-{workers}",
                   f"binreplay CLI subprocess, --workers {workers} --dependency {dependency}", "cli",
                   workers, dependency)
        t = self.fresh_target(wl, ctx, m, relaxed)
        try:
            cmd = [sys.executable, "-m", "binreplay", "replay", *map(str, files), "-S", str(t.socket), "-u", "root",
                   "--from-backup", str(ctx["backup"]), "--workers", str(workers), "--dependency", dependency,
                   "--progress", "none"]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            sampler = _AnonSampler(proc.pid)
            sampler.start()
            assert proc.stderr is not None
            err = proc.stderr.read().decode(errors="replace")
            _pid, status, usage = os.wait4(proc.pid, 0)
            secs = time.monotonic() - t0
            sampler.join()
            proc.returncode = os.waitstatus_to_exitcode(status)
            rss_mb = usage.ru_maxrss / 1024
            note = (f"peak RSS {rss_mb:.0f} MB, of which anonymous memory at most {sampler.peak_anon_kb / 1024:.0f} MB;"
                    f" the rest is file pages, e.g. binlogs read through mmap")
            if proc.returncode != 0:
                return Result(m, None, f"FAILED: exit {proc.returncode}: {err.strip()[-300:]}", note), rss_mb
            return Result(m, secs, self.verify(source, t), note), rss_mb
        finally:
            self.servers.discard(t)


class _AnonSampler(threading.Thread):
    """Samples a process's RssAnon (/proc/PID/status) every 10 ms: ru_maxrss also counts file-backed pages."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_anon_kb = 0

    def run(self) -> None:
        path = Path(f"/proc/{self.pid}/status")
        while True:
            try:
                text = path.read_text()
            except OSError:
                return
            if "State:\tZ" in text:   # exited, not yet reaped
                return
            for line in text.splitlines():
                if line.startswith("RssAnon:"):
                    self.peak_anon_kb = max(self.peak_anon_kb, int(line.split()[1]))
            time.sleep(0.01)


# ---- report -------------------------------------------------------------------------------------------

def machine() -> str:
    version = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout.strip()
    version = " ".join(version.split())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}, Python {platform.python_version()}, "
            f"{version}")


def code_version() -> str:
    """The binreplay code measured: git commit, uncommitted changes, and a digest of the package source."""
    import hashlib

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    digest = hashlib.sha256()
    for f in sorted((ROOT / "binreplay").rglob("*.py")):
        digest.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    dirty = [ln for ln in git("status", "--porcelain", "--", "binreplay").splitlines() if ln]
    return (f"git {git('rev-parse', '--short', 'HEAD') or '?'}"
            f"{f' + {len(dirty)} uncommitted file(s) in binreplay/' if dirty else ''}, "
            f"source digest {digest.hexdigest()[:12]}")


def fmt_table(run: WorkloadRun) -> list[str]:
    pipe = run.pipe_seconds()
    lines = ["| method | seconds | transactions/s | vs pipe | content |", "|---|---:|---:|---:|---|"]
    for r in run.results:
        if r.seconds is None:
            lines.append(f"| {r.method.label} | — | — | — | {r.verdict} |")
            continue
        tps = f"{run.transactions / r.seconds:.0f}"
        ratio = f"{pipe / r.seconds:.2f}x" if pipe and r.ok else "—"
        verdict = r.verdict.replace("|", "\\|") + (f" ({r.note})" if r.note and (r.method.kind == "cli" or r.note.startswith("median")) else "")
        lines.append(f"| {r.method.label} | {r.seconds:.2f} | {tps} | {ratio} | {verdict} |")
    return lines


def report(args: argparse.Namespace, runs: list[WorkloadRun], rss: str, started: float, command: str) -> str:
    total = time.monotonic() - started
    out = [f"### {'Quick' if args.quick else 'Full'} run, {dt.datetime.now():%Y-%m-%d %H:%M}, "
           f"{', '.join(sorted({r.durability for r in runs}))} target(s)", "",
           f"Machine: {machine()}  ",
           f"binreplay code: {args.code_version}  ",
           f"Command: `{command}` (took {total / 60:.1f} min; load average at the start {args.load_start:.2f}, "
           f"at the end {os.getloadavg()[0]:.2f}; other jobs may share the machine)  ",
           "Targets: fresh server per method from the same restored datadir, binlog off, buffer pool 512 MB, "
           "redo 256 MB; durable = `innodb_flush_log_at_trx_commit=1`, relaxed = `=2`. Source: durable "
           "(`sync_binlog=1`, `innodb_flush_log_at_trx_commit=1`) while the workload runs.  ",
           f"{rss}", ""]
    picks = {}
    if runs:
        picks["largest binlog"] = max(runs, key=lambda r: r.binlog_bytes)
        picks["most events"] = max(runs, key=lambda r: r.events)
    for what, r in picks.items():
        if what == "most events" and r is picks["largest binlog"]:
            continue
        out += [f"Reader alone (`BinlogReader` over the {what}, {r.workload.name}, {r.binlog_bytes / 1e6:.1f} MB): "
                f"{r.events} events in {r.reader_seconds:.3f}s = {r.events / r.reader_seconds:,.0f} events/s, "
                f"{r.transactions / r.reader_seconds:,.0f} transactions/s, "
                f"{r.binlog_bytes / 1e6 / r.reader_seconds:.0f} MB/s.  "]
    out.append("")
    for run in runs:
        avg = run.transactions / run.groups if run.groups else 0
        out += [f"#### {run.workload.name}, {run.durability} target: {run.workload.title}", "",
                f"{run.transactions} transactions, {run.events} events, {run.binlog_bytes / 1e6:.1f} MB of binlog "
                f"in {run.binlog_files} file(s); the source took {run.source_seconds:.1f}s "
                f"({run.transactions / run.source_seconds:.0f} trx/s); source group commit: {run.groups} groups, "
                f"{avg:.1f} transactions per group on average, {run.grouped_trx} transactions in groups of 2+; "
                f"reader {run.events / run.reader_seconds:,.0f} events/s.", ""]
        out += fmt_table(run)
        out.append("")
    return "\n".join(out)


def chart(runs: list[WorkloadRun], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    durabilities = sorted({r.durability for r in runs})
    names = list(dict.fromkeys(r.workload.name for r in runs))
    labels = list(dict.fromkeys(r.method.label.replace("`", "").replace("\\|", "|")
                                for run in runs for r in run.results))
    fig, axes = plt.subplots(len(durabilities), len(names), squeeze=False, sharey=True, sharex=True,
                             figsize=(3.2 * len(names) + 3.5, 0.3 * len(labels) * len(durabilities) + 1.5))
    for i, dur in enumerate(durabilities):
        for j, name in enumerate(names):
            ax = axes[i][j]
            run = next((r for r in runs if r.durability == dur and r.workload.name == name), None)
            ax.set_title(f"{name} ({dur})", fontsize=9)
            ax.axvline(1.0, color="grey", lw=0.8, ls="--")
            if run is None:
                continue
            pipe = run.pipe_seconds()
            by_label = {r.method.label.replace("`", "").replace("\\|", "|"): r for r in run.results}
            for y, label in enumerate(labels):
                r = by_label.get(label)
                if r is None:
                    continue
                if r.ok and pipe:
                    v = pipe / r.seconds
                    color = ("#999999" if r.method.kind == "pipe" else "#d9822b" if r.method.kind == "mariadb"
                             else "#2b7bd9")
                    ax.barh(y, v, color=color)
                    ax.text(v, y, f" {v:.1f}", va="center", fontsize=6)
                else:
                    ax.text(0.05, y, "WRONG" if r.verdict.startswith("WRONG") else "FAILED", va="center",
                            fontsize=6, color="red")
            ax.set_xlabel("speed-up vs pipe", fontsize=7)
            ax.tick_params(labelsize=6)
    axes[0][0].set_yticks(range(len(labels)))
    axes[0][0].set_yticklabels(labels, fontsize=6)
    axes[0][0].invert_yaxis()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


# ---- main ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small workloads and fewer methods (< 5 minutes)")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"),
                    help="append a results section to this Markdown file ('' for none)")
    ap.add_argument("--chart", default=str(HERE / "results.png"), help="write the PNG chart here ('' for none)")
    ap.add_argument("--relaxed", action="store_true", help="targets with innodb_flush_log_at_trx_commit=2 only")
    ap.add_argument("--durability", choices=["durable", "relaxed", "both"],
                    help="target durability (default: durable with --quick, both without; --relaxed means relaxed)")
    ap.add_argument("--workloads", help=f"comma-separated subset of {','.join(BY_NAME)}")
    ap.add_argument("--methods", help="comma-separated method keys or prefixes (e.g. pipe,mariadb,binreplay-row)")
    ap.add_argument("--dependencies", help="binreplay dependency modes to run (comma-separated)")
    ap.add_argument("--workers", help="binreplay worker counts to run (comma-separated)")
    ap.add_argument("--rss-config", default="8:row", help="WORKERS:DEPENDENCY of the CLI subprocess run whose peak "
                                                          "RSS is reported ('' to skip)")
    ap.add_argument("--restore-each", action="store_true", help="restore the dump into every target instead of "
                                                                "copying one restored datadir")
    ap.add_argument("--repeat", type=int, default=1, help="run every method N times (fresh target each); report the "
                                                          "median")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    args.load_start = os.getloadavg()[0]
    args.code_version = code_version()
    if args.durability is None:
        args.durability = "relaxed" if args.relaxed else "durable" if args.quick else "both"
    if args.rss_config:
        w, _, d = args.rss_config.partition(":")
        args.rss_config = (int(w), d or "row")
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)   # unwinds through the finally blocks: every sandbox is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                               else sys.argv[1:]))
    started = time.monotonic()
    workloads = [BY_NAME[n] for n in args.workloads.split(",")] if args.workloads else WORKLOADS
    methods = methods_for(args.quick, args.dependencies.split(",") if args.dependencies else None,
                          [int(w) for w in args.workers.split(",")] if args.workers else None)
    if args.methods:
        wanted = args.methods.split(",")
        methods = [m for m in methods if any(m.key.startswith(w) for w in wanted)]
    durabilities = ["durable", "relaxed"] if args.durability == "both" else [args.durability]
    base = Path(tempfile.mkdtemp(prefix="brb-", dir="/tmp"))
    bench = Bench(args, base)
    runs: list[WorkloadRun] = []
    contexts: list[tuple[Workload, dict]] = []
    rss_line = "Peak RSS: not measured."
    try:
        for wl in workloads:
            ctx = bench.prepare(wl)
            for dur in durabilities:
                run = bench.binlog_stats(wl, ctx, dur)
                bench.log(f"{wl.name}: {run.transactions} transactions, {run.binlog_bytes / 1e6:.1f} MB, source "
                          f"{run.source_seconds:.1f}s, {run.transactions / max(run.groups, 1):.1f} trx per source "
                          f"group; replaying with {len(methods)} methods ({dur})")
                for m in methods:
                    r = bench.run_repeated(wl, ctx, m, dur == "relaxed")
                    run.results.append(r)
                    pipe = run.pipe_seconds()
                    speed = f"{pipe / r.seconds:.2f}x" if r.ok and pipe else ""
                    secs = f"{r.seconds:.2f}s" if r.seconds is not None else "-"
                    bench.log(f"  {m.key:<28} {secs:>8} {speed:>7}  {r.verdict[:160]}")
                runs.append(run)
            bench.servers.stop(ctx["source"])
            contexts.append((wl, ctx))
        if args.rss_config and contexts:
            # The largest binlog: its source is restarted for the verification.
            size = {r.workload.name: r.binlog_bytes for r in runs}
            wl, ctx = max(contexts, key=lambda c: size[c[0].name])
            ctx["source"].start(timeout=180)
            result, rss = bench.rss_run(wl, ctx, durabilities[0] == "relaxed")
            if result.verdict.startswith("FAILED") and args.rss_config[1] != "commit-order":
                bench.log(f"CLI run failed ({result.verdict[:200]}); measuring RSS with commit-order instead")
                args.rss_config = (args.rss_config[0], "commit-order")
                result2, rss = bench.rss_run(wl, ctx, durabilities[0] == "relaxed")
                next(r for r in runs if r.workload is wl).results.append(result)
                result = result2
            run = next(r for r in runs if r.workload is wl)
            run.results.append(result)
            bench.log(f"  {result.method.key:<28} {result.seconds or 0:>7.2f}s  {result.verdict[:160]} "
                      f"({result.note})")
            rss_line = (f"Memory of one binreplay process (`python -m binreplay replay ... --workers "
                        f"{args.rss_config[0]} --dependency {args.rss_config[1]} --progress none` on the largest "
                        f"binlog, {wl.name}, {run.binlog_bytes / 1e6:.1f} MB): {result.note}"
                        + ("" if result.ok else f" ({result.verdict[:120]})") + ".")
            bench.servers.stop(ctx["source"])
        text = report(args, runs, rss_line, started, command)
        print("\n" + text)
        if args.out:
            with open(args.out, "a") as f:
                f.write("\n" + text + "\n")
        if args.chart and runs:
            try:
                chart(runs, Path(args.chart), f"binreplay benchmark ({'quick' if args.quick else 'full'} run): "
                                              "speed-up vs mariadb-binlog | mariadb, same binlog, content verified")
                print(f"chart written to {args.chart}")
            except ImportError:
                print("no chart: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        bench.log(f"done in {(time.monotonic() - started) / 60:.1f} min")
        bad = [r for run in runs for r in run.results if r.verdict.startswith("WRONG")]
        return 1 if bad else 0
    finally:
        bench.servers.close()
        if args.keep:
            print(f"work directory kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
