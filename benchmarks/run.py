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
                    conservative / optimistic ("MariaDB best" = the faster of those two)
  binreplay-*       `python -m binreplay replay ... --progress none` as a subprocess: default
                    flags, --workers 1, --workers 8, --workers 8 --preserve-commit-order (and a
                    --workers x --dependency sweep in a full run)

Per method: seconds, ratios to the pipe and to MariaDB best, CPU seconds of the client side
(binreplay, or mariadb-binlog + mariadb; wait4) and of the target mariadbd (/proc/PID/stat),
and binreplay's peak RSS (see measure.py). After each method the target is compared with the
source table by table (compare_servers); a run whose content differs is WRONG and gets no ratio.

Remote target (OLTP workload, unless --no-remote): the pipe and binreplay with default flags
again, connected over TCP through delay_proxy.py, which adds --remote-delay-ms each way.

    python benchmarks/run.py [--quick] [--scale F] [--out benchmarks/RESULTS.md] [--chart benchmarks/results.png]
                             [--relaxed | --durability durable|relaxed|both] [--workloads oltp,hot]
                             [--remote-delay-ms 0.5] [--remote-transactions N] [--no-remote]
    python benchmarks/run.py --large [--scale F] [--out benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import bench_report  # noqa: E402
import mariadb_parallel  # noqa: E402
import pymysql  # noqa: E402
from measure import ChildUsage, process_cpu_seconds, read_progress, run_measured, run_pipeline, tenths  # noqa: E402
from results import BINREPLAY_DEFAULT, PIPE, Method, RemoteRun, Result, Usage, WorkloadRun, methods_for  # noqa: E402
from workloads import BY_NAME, LARGE, WORKLOADS, Scale, Workload  # noqa: E402

from binreplay.devtools.compare import compare_servers  # noqa: E402
from binreplay.devtools.demo import restore  # noqa: E402
from binreplay.devtools.sandbox import Sandbox, create_sandbox  # noqa: E402
from binreplay.devtools.sandbox.processes import die_with_parent  # noqa: E402
from binreplay.model import MariadbGtid  # noqa: E402
from binreplay.source.backup_meta import BackupCoordinates, read_backup_coordinates  # noqa: E402
from binreplay.source.reader import BinlogReader  # noqa: E402

SOURCE_OPTIONS = {"innodb_buffer_pool_size": "512M", "innodb_log_file_size": "256M"}


def target_options(relaxed: bool) -> dict[str, str | None]:
    return {
        "innodb_flush_log_at_trx_commit": "2" if relaxed else "1",
        "innodb_buffer_pool_size": "512M",
        "innodb_log_file_size": "256M",
        "innodb_buffer_pool_dump_pct": "100",
    }


# ---- how a client reaches a target --------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """The target's Unix socket (local methods) or a TCP port on 127.0.0.1 (the delay proxy)."""
    socket: str | None = None
    port: int | None = None

    def mariadb_args(self) -> list[str]:
        common = ["--no-defaults", "-uroot", "--default-character-set=utf8mb4"]
        if self.socket:
            return [*common, f"--socket={self.socket}", "--protocol=socket"]
        # --protocol=tcp: with -h 127.0.0.1 alone a client may still pick the socket; --skip-ssl: the
        # sandboxes have no TLS, say so rather than depend on the client's default.
        return [*common, "-h127.0.0.1", f"-P{self.port}", "--protocol=tcp", "--skip-ssl"]

    def binreplay_args(self) -> list[str]:
        if self.socket:
            return ["-S", self.socket, "-u", "root"]
        return ["-h", "127.0.0.1", "-P", str(self.port), "-u", "root", "--ssl-mode", "disabled"]


def local(t: Sandbox) -> Endpoint:
    return Endpoint(socket=str(t.socket))


@dataclass(frozen=True)
class Prefix:
    """The first `transactions` transactions of the binlog: files up to `files[-1]`, stop at `stop_pos` in it."""
    files: list[Path]
    stop_pos: int
    transactions: int

    @property
    def where(self) -> str:
        return f"{self.files[-1].name}:{self.stop_pos}"


@dataclass
class Prepared:
    """A workload's source, backup, binlog and template target, shared by all its methods."""
    workload: Workload
    scale: Scale
    source: Sandbox
    backup: Path
    coords: BackupCoordinates
    files: list[Path]
    template: Sandbox | None
    setup_s: float
    source_s: float


class DelayProxyProcess:
    """delay_proxy.py as a child process (its own interpreter: no GIL shared with this one's threads)."""

    def __init__(self, target_port: int, delay_ms: float) -> None:
        self.cmd = [sys.executable, str(HERE / "delay_proxy.py"), "--target-port", str(target_port),
                    "--delay-ms", str(delay_ms)]
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> DelayProxyProcess:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()          # "listening on 127.0.0.1:<port>"
        if not line.startswith("listening on"):
            self.proc.kill()
            raise RuntimeError(f"delay proxy did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def median_round_trip_ms(port: int, n: int = 200) -> float:
    """Median time of `SELECT 1` over TCP to 127.0.0.1:port: what a client waits per statement."""
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="")
    try:
        cur = conn.cursor()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchall()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000
    finally:
        conn.close()


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


def server_cpu(t: Sandbox) -> float | None:
    pid = t.server_pid()
    return process_cpu_seconds(pid) if pid is not None else None


# ---- the benchmark ------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, base: Path) -> None:
        self.args = args
        self.base = base
        self.servers = Servers(base)
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))

    def log(self, msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    # -- preparing a workload

    def prepare(self, wl: Workload) -> Prepared:
        """Source, data, backup, binlog, template target."""
        scale = wl.scale(self.args.quick, self.args.scale)
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
        if wl.durable_source:
            # A durable source, as in production: its binlog group commit then really groups.
            source.execute("SET GLOBAL innodb_flush_log_at_trx_commit=1, sync_binlog=1")
        self.log(f"{wl.name}: backup at {coords.binlog_file}:{coords.position}; generating "
                 f"{scale.total_transactions} transactions from {scale.clients + scale.queue_clients} clients")
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
        return Prepared(wl, scale, source, backup, coords, files, template, setup_s, source_s)

    def binlog_stats(self, prep: Prepared, durability: str) -> WorkloadRun:
        files, coords = prep.files, prep.coords
        run = WorkloadRun(prep.workload, durability, source_seconds=prep.source_s, setup_seconds=prep.setup_s)
        run.binlog_files = len(files)
        run.binlog_bytes = sum(f.stat().st_size for f in files) - coords.position
        # One pass counts transactions and source commit groups and times the reader (the counting
        # costs little next to reading); more passes only while the total is under a second.
        passes, elapsed = 0, 0.0
        while passes == 0 or elapsed < 1.0:
            reader = BinlogReader(files, start_pos=coords.position)
            counting = passes == 0
            last_cid = object()
            t0 = time.monotonic()
            for trx in reader.transactions():
                if counting:
                    run.transactions += 1
                    cid = trx.gtid.commit_id if isinstance(trx.gtid, MariadbGtid) else None
                    if cid is None or cid != last_cid:
                        run.groups += 1
                    if cid is not None:
                        run.grouped_trx += 1
                    last_cid = cid
            elapsed += time.monotonic() - t0
            passes += 1
        run.reader_seconds = elapsed / passes
        run.events = reader.stats.events
        return run

    def prefix(self, prep: Prepared, transactions: int) -> Prefix:
        """Where the first `transactions` transactions end: the stop point for both remote methods."""
        n = 0
        for trx in BinlogReader(prep.files, start_pos=prep.coords.position).transactions():
            n += 1
            if n == transactions:
                files = prep.files[:trx.file_index + 1]
                return Prefix(files, trx.end_pos, n)
        raise ValueError(f"the binlog has only {n} transactions")

    # -- targets

    def fresh_target(self, prep: Prepared, m: Method, relaxed: bool, tag: str = "") -> Sandbox:
        dirname = f"{prep.workload.name}-{m.key}{tag}-{'r' if relaxed else 'd'}"
        options = target_options(relaxed)
        if m.kind == "mariadb":
            base = prep.files[0].name.rsplit(".", 1)[0]
            options |= mariadb_parallel.relay_options(self.base / dirname, base)
        if prep.template is not None:
            dest = self.base / dirname
            shutil.copytree(prep.template.datadir, dest / "data", symlinks=True)
            (dest / ".initialized").touch()
            t = self.servers.start(dirname, options=options)
            wait_buffer_pool_loaded(t)
        else:
            t = self.servers.start(dirname, options=options)
            restore(t, prep.backup)
        # The copy (and the restore) leave hundreds of MB of dirty pages whose writeback would compete
        # with the fsyncs of the method timed next (measured: DDL-heavy runs at the end of a run took up
        # to twice their time alone); write them out first, for every method alike.
        os.sync()
        return t

    @staticmethod
    def verify(reference: Sandbox, t: Sandbox) -> str:
        with reference.connect() as ref, t.connect() as c:
            diffs = compare_servers(ref, c)
        if not diffs:
            return "identical"
        return f"WRONG: {len(diffs)} table(s) differ, e.g. {diffs[0]}"

    # -- applying the binlog, one method

    def pipe_usage(self, prep: Prepared, endpoint: Endpoint, log: Path, prefix: Prefix | None) -> ChildUsage:
        files = prefix.files if prefix else prep.files
        stop = [f"--stop-position={prefix.stop_pos}"] if prefix else []
        dump = ["mariadb-binlog", f"--start-position={prep.coords.position}", *stop, *map(str, files)]
        return run_pipeline([dump, ["mariadb", *endpoint.mariadb_args()]], stderr_path=log)

    def binreplay_usage(self, prep: Prepared, m: Method, endpoint: Endpoint, log: Path, prefix: Prefix | None,
                        progress: str) -> ChildUsage:
        files = prefix.files if prefix else prep.files
        stop = ["--stop-position", str(prefix.stop_pos)] if prefix else []
        cmd = [sys.executable, "-m", "binreplay", "replay", *map(str, files), *endpoint.binreplay_args(),
               "--from-backup", str(prep.backup), *stop, *m.flags, "--progress", progress]
        return run_measured(cmd, stderr_path=log, usage_path=log.with_suffix(".rusage.json"), cwd=ROOT, env=self.env)

    def apply(self, prep: Prepared, m: Method, t: Sandbox, endpoint: Endpoint, log: Path,
              prefix: Prefix | None = None, progress: str = "none") -> Result:
        """Run method `m` against the fresh target `t`; time and CPU, not yet verified.

        A failing method is a result, not the end of the benchmark.
        """
        cpu0 = server_cpu(t)
        usage = Usage()
        try:
            if m.kind == "mariadb":
                assert prefix is None and endpoint.socket, "MariaDB's applier runs inside the target"
                seconds = mariadb_parallel.replay(t, prep.files, prep.coords.binlog_file, prep.coords.position,
                                                  threads=m.threads, mode=m.mode)
            else:
                child = (self.pipe_usage(prep, endpoint, log, prefix) if m.kind == "pipe"
                         else self.binreplay_usage(prep, m, endpoint, log, prefix, progress))
                usage.client_cpu_s = child.cpu_s
                if m.kind == "binreplay":
                    usage.peak_rss_mb, usage.anon_mb = child.maxrss_mb, child.anon_mb
                if not child.ok:
                    last = child.stderr.strip().splitlines()[-1:] or [""]
                    raise RuntimeError(f"exit {child.returncodes}: {last[0][:300]}")
                seconds = child.seconds
        except Exception as exc:  # noqa: BLE001
            if self.args.verbose:
                traceback.print_exc()
            return Result(m, None, f"FAILED: {type(exc).__name__}: {str(exc)[:300]}", usage=usage, log=log)
        cpu1 = server_cpu(t)
        usage.target_cpu_s = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        return Result(m, seconds, "", usage=usage, log=log)

    def run_method(self, prep: Prepared, m: Method, relaxed: bool, progress: str = "none") -> Result:
        t = self.fresh_target(prep, m, relaxed)
        try:
            r = self.apply(prep, m, t, local(t), self.base / f"{t.name}.stderr", progress=progress)
            if r.seconds is not None:
                r.verdict = self.verify(prep.source, t)
            return r
        finally:
            self.servers.discard(t)

    def run_rounds(self, prep: Prepared, methods: list[Method], relaxed: bool,
                   log: Callable[[Method, Result], None]) -> list[Result]:
        """`--repeat N`: every method N times, in rounds (each round runs every method once), so that a
        slow spell of the machine falls on all methods alike; the rounds after the first in shuffled
        orders (fixed seeds), so that no method always runs right after the same one (the first
        binreplay run after MariaDB's 8 applier threads measured slower than the same flags later in
        the round); per method its median run."""
        runs: dict[str, list[Result]] = {m.key: [] for m in methods}
        for n in range(self.args.repeat):
            order = list(methods)
            if n:
                random.Random(n).shuffle(order)
            for m in order:
                r = self.run_method(prep, m, relaxed)
                runs[m.key].append(r)
                log(m, r)
        return [self.median(runs[m.key]) for m in methods]

    @staticmethod
    def median(results: list[Result]) -> Result:
        """The median run, unless a run was wrong or failed (it decides the verdict)."""
        bad = next((r for r in results if not r.ok), None)
        if bad is not None or len(results) == 1:
            return bad or results[0]
        ranked = sorted(results, key=lambda r: r.seconds)
        median = ranked[len(ranked) // 2]
        median.note = f"median of {len(ranked)}: {', '.join(f'{r.seconds:.2f}' for r in ranked)}"
        # Memory is a limit for every run, not a typical value: the largest of the runs.
        rss = [r.usage.peak_rss_mb for r in results if r.usage.peak_rss_mb is not None]
        anon = [r.usage.anon_mb for r in results if r.usage.anon_mb is not None]
        if rss:
            median.usage.peak_rss_mb = max(rss)
        if anon:
            median.usage.anon_mb = max(anon)
        return median

    # -- the remote target

    def run_remote(self, prep: Prepared, run: WorkloadRun, relaxed: bool) -> RemoteRun:
        """The pipe and binreplay (default flags) through the delay proxy, each on a fresh target.

        With --remote-transactions N (< all), both replay the same first N transactions; binreplay's
        target is then compared with the pipe's (the source has the whole binlog applied).
        """
        rr = RemoteRun(self.args.remote_delay_ms, total_transactions=run.transactions)
        n = self.args.remote_transactions
        prefix = self.prefix(prep, n) if 0 < n < run.transactions else None
        rr.transactions = prefix.transactions if prefix else run.transactions
        rr.stop = prefix.where if prefix else ""
        pipe_target: Sandbox | None = None
        try:
            for m in (PIPE, BINREPLAY_DEFAULT):
                t = self.fresh_target(prep, m, relaxed, tag="-remote")
                keep = False
                try:
                    with DelayProxyProcess(t.port, rr.delay_ms) as proxy:
                        if rr.rtt_proxy_ms is None:
                            rr.rtt_direct_ms = median_round_trip_ms(t.port)
                            rr.rtt_proxy_ms = median_round_trip_ms(proxy.port)
                            self.log(f"  remote: SELECT 1 round trip {rr.rtt_proxy_ms:.2f} ms through the proxy, "
                                     f"{rr.rtt_direct_ms:.2f} ms direct")
                        r = self.apply(prep, m, t, Endpoint(port=proxy.port), self.base / f"{t.name}.stderr",
                                       prefix=prefix)
                    if r.seconds is not None:
                        if prefix is None:
                            r.verdict = self.verify(prep.source, t)
                        elif m is PIPE:
                            r.verdict, keep, pipe_target = "reference (prefix: binreplay is compared with it)", True, t
                        elif pipe_target is not None:
                            v = self.verify(pipe_target, t)
                            r.verdict = v.replace("identical", "identical to the pipe's prefix", 1)
                        else:
                            r.verdict = "FAILED: no reference (the remote pipe failed)"
                    rr.results.append(r)
                    self.log(f"  remote {m.key:<22} {bench_report.secs(r.seconds):>8}  {r.verdict[:120]}")
                finally:
                    if not keep:
                        self.servers.discard(t)
        finally:
            if pipe_target is not None:
                self.servers.discard(pipe_target)
        return rr


# ---- main ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small workloads (OLTP keeps its 25,000 transactions) and "
                                                         "the four standard binreplay runs only")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload's transactions and rows by F "
                                                             "(e.g. 0.08 for a one-minute OLTP; for trying the "
                                                             "harness, not for numbers)")
    ap.add_argument("--large", action="store_true", help="only the large run: >= 1,000,000 transactions, >= 2 GB "
                                                         "of binlog, binreplay with default flags")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"),
                    help="append a results section to this Markdown file ('' for none)")
    ap.add_argument("--chart", default=str(HERE / "results.png"), help="write the PNG chart here ('' for none)")
    ap.add_argument("--relaxed", action="store_true", help="targets with innodb_flush_log_at_trx_commit=2 only")
    ap.add_argument("--durability", choices=["durable", "relaxed", "both"],
                    help="target durability (default: durable with --quick or --large, both otherwise; "
                         "--relaxed means relaxed)")
    ap.add_argument("--workloads", help=f"comma-separated subset of {','.join(BY_NAME)}")
    ap.add_argument("--methods", help="comma-separated method keys or prefixes (e.g. pipe,mariadb,binreplay-w8)")
    ap.add_argument("--dependencies", help="binreplay dependency modes to sweep (comma-separated)")
    ap.add_argument("--workers", help="binreplay worker counts to sweep (comma-separated)")
    ap.add_argument("--remote-delay-ms", type=float, default=0.5,
                    help="remote target: delay the proxy adds to each direction (default 0.5 ms)")
    ap.add_argument("--remote-transactions", type=int, default=0,
                    help="remote target: replay only the first N transactions with both methods (default: all)")
    ap.add_argument("--no-remote", action="store_true", help="skip the remote-target runs")
    ap.add_argument("--restore-each", action="store_true", help="restore the dump into every target instead of "
                                                                "copying one restored datadir")
    ap.add_argument("--repeat", type=int, default=1, help="run every method N times (fresh target each); report the "
                                                          "median time (and the largest peak RSS)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    args.load_start = os.getloadavg()[0]
    args.code_version = bench_report.code_version(ROOT)
    if args.durability is None:
        args.durability = "relaxed" if args.relaxed else "durable" if args.quick or args.large else "both"
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)   # unwinds through the finally blocks: every sandbox is stopped


def selected_methods(args: argparse.Namespace) -> list[Method]:
    methods = methods_for(args.quick, args.dependencies.split(",") if args.dependencies else None,
                          [int(w) for w in args.workers.split(",")] if args.workers else None)
    if args.methods:
        wanted = args.methods.split(",")
        methods = [m for m in methods if any(m.key.startswith(w) for w in wanted)]
    return methods


def run_workloads(bench: Bench, args: argparse.Namespace) -> list[WorkloadRun]:
    workloads = [BY_NAME[n] for n in args.workloads.split(",")] if args.workloads else WORKLOADS
    methods = selected_methods(args)
    durabilities = ["durable", "relaxed"] if args.durability == "both" else [args.durability]
    runs: list[WorkloadRun] = []
    for wl in workloads:
        prep = bench.prepare(wl)
        for dur in durabilities:
            run = bench.binlog_stats(prep, dur)
            bench.log(f"{wl.name}: {run.transactions} transactions, {run.binlog_bytes / 1e6:.1f} MB, source "
                      f"{run.source_seconds:.1f}s, {run.transactions / max(run.groups, 1):.1f} trx per source "
                      f"group; replaying with {len(methods)} methods ({dur})")
            def log(m: Method, r: Result) -> None:
                bench.log(f"  {m.key:<28} {bench_report.secs(r.seconds):>8}  {r.verdict[:160]}")

            run.results.extend(bench.run_rounds(prep, methods, dur == "relaxed", log))
            for r in run.results:
                bench.log(f"  {r.method.key:<28} {bench_report.secs(r.seconds):>8} "
                          f"{bench_report.progress_ratios(run, r)}  {r.verdict[:60]} {r.note}")
            if wl.name == "oltp" and not args.no_remote:
                run.remote = bench.run_remote(prep, run, dur == "relaxed")
            runs.append(run)
        bench.servers.stop(prep.source)
    return runs


def run_large(bench: Bench, args: argparse.Namespace) -> WorkloadRun:
    """--large: one replay of >= 1M transactions with default flags, verified, with its progress over time."""
    prep = bench.prepare(LARGE)
    run = bench.binlog_stats(prep, args.durability)
    bench.log(f"large: {run.transactions} transactions, {run.binlog_bytes / 1e9:.2f} GB in {run.binlog_files} "
              f"file(s), generated in {run.source_seconds:.0f}s; replaying with default flags")
    r = bench.run_method(prep, BINREPLAY_DEFAULT, args.durability == "relaxed", progress="json")
    run.results.append(r)
    if r.log is not None and r.log.exists():
        progress = read_progress(r.log)
        run.progress = tenths(progress.points)
        run.preflight_s = progress.setup_s
    bench.log(f"  {r.method.key:<28} {bench_report.secs(r.seconds):>8}  {r.verdict[:160]}")
    bench.servers.stop(prep.source)
    return run


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                               else sys.argv[1:]))
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="brb-", dir="/tmp"))
    bench = Bench(args, base)
    try:
        if args.large:
            runs = [run_large(bench, args)]
            text = bench_report.large_report(args, runs[0], started, command)
        else:
            runs = run_workloads(bench, args)
            text = bench_report.report(args, runs, started, command)
        print("\n" + text)
        if args.out:
            with open(args.out, "a") as f:
                f.write("\n" + text + "\n")
        if args.chart and runs and not args.large:
            try:
                bench_report.chart(runs, Path(args.chart),
                                   f"binreplay benchmark ({'quick' if args.quick else 'full'} run): speed-up vs "
                                   "mariadb-binlog | mariadb, same binlog, content verified")
                print(f"chart written to {args.chart}")
            except ImportError:
                print("no chart: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        bench.log(f"done in {(time.monotonic() - started) / 60:.1f} min")
        results = [r for run in runs for r in run.results + (run.remote.results if run.remote else [])]
        return 1 if any(r.verdict.startswith("WRONG") for r in results) else 0
    finally:
        bench.servers.close()
        if args.keep:
            print(f"work directory kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
