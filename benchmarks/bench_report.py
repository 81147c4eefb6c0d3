"""The Markdown section a benchmark run appends to RESULTS.md, its targets block, and the chart."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from results import BINREPLAY_DEFAULT, PIPE, RemoteRun, Result, WorkloadRun, ratio

RSS_LIMIT_MB = 200


# ---- small formatting helpers --------------------------------------------------------------------------

def secs(s: float | None) -> str:
    return f"{s:.2f}s" if s is not None else "-"


def times(v: float | None) -> str:
    return f"{v:.2f}x" if v is not None else "—"


def num(v: float | None, digits: int = 1) -> str:
    return f"{v:.{digits}f}" if v is not None else "—"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def progress_ratios(run: WorkloadRun, r: Result) -> str:
    """For the log line while the run goes on: the ratios known so far."""
    parts = []
    if r.method.kind != "pipe" and (v := ratio(run.pipe(), r)) is not None:
        parts.append(f"{v:.2f}x pipe")
    best = run.mariadb_best()
    if r.method.kind == "binreplay" and (v := ratio(best, r)) is not None:
        parts.append(f"{v:.2f}x MariaDB best")
    return ", ".join(parts)


def rss_cell(r: Result) -> str:
    u = r.usage
    if u.peak_rss_mb is None:
        return "—"
    return f"{u.peak_rss_mb:.0f}" + (f" (anon {u.anon_mb:.0f})" if u.anon_mb is not None else "")


# ---- environment ---------------------------------------------------------------------------------------

def machine() -> str:
    version = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout.strip()
    version = " ".join(version.split())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}, Python {platform.python_version()}, "
            f"{version}")


def code_version(root: Path) -> str:
    """The binreplay code measured: git commit, uncommitted changes, and a digest of the package source."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()

    digest = hashlib.sha256()
    for f in sorted((root / "binreplay").rglob("*.py")):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    dirty = [ln for ln in git("status", "--porcelain", "--", "binreplay").splitlines() if ln]
    return (f"git {git('rev-parse', '--short', 'HEAD') or '?'}"
            f"{f' + {len(dirty)} uncommitted file(s) in binreplay/' if dirty else ''}, "
            f"source digest {digest.hexdigest()[:12]}")


def header(title: str, args: argparse.Namespace, started: float, command: str) -> list[str]:
    total = time.monotonic() - started
    scale = f"; `--scale {args.scale:g}`: sizes are not the benchmark's" if args.scale != 1.0 else ""
    return [f"### {title}, {dt.datetime.now():%Y-%m-%d %H:%M}, {args.durability} target(s){scale}", "",
            f"Machine: {machine()}  ",
            f"binreplay code: {args.code_version}  ",
            f"Command: `{command}` (took {total / 60:.1f} min; load average at the start {args.load_start:.2f}, "
            f"at the end {os.getloadavg()[0]:.2f}; other jobs may share the machine)  ",
            "Targets: fresh server per method from the same restored datadir, binlog off, buffer pool 512 MB, "
            "redo 256 MB; durable = `innodb_flush_log_at_trx_commit=1`, relaxed = `=2`.  ",
            "Columns: *vs pipe* and *vs MariaDB best* = that method's time divided into the pipe's / into the "
            "faster of MariaDB's conservative and optimistic modes at 8 threads (same run, same binlog); "
            "*client CPU* = user+sys of the binreplay process, or of mariadb-binlog + mariadb for the pipe "
            "(wait4; MariaDB's applier runs inside the server); *target CPU* = user+sys of the target mariadbd "
            "during the method (/proc/PID/stat); *peak RSS* = binreplay's ru_maxrss (spawned by "
            "`rusage_launcher.py`, so that it does not start at the benchmark's RSS), which counts file pages "
            "it touched (binlogs read through mmap), with its sampled peak anonymous memory in brackets. "
            "WRONG or FAILED runs get no ratio.", ""]


def reader_line(r: WorkloadRun, what: str) -> str:
    return (f"Reader alone (`BinlogReader` over the {what}, {r.workload.name}, {r.binlog_bytes / 1e6:.1f} MB): "
            f"{r.events} events in {r.reader_seconds:.3f}s = {r.events / r.reader_seconds:,.0f} events/s, "
            f"{r.transactions / r.reader_seconds:,.0f} transactions/s, "
            f"{r.binlog_bytes / 1e6 / r.reader_seconds:.0f} MB/s.  ")


def binlog_line(run: WorkloadRun) -> str:
    avg = run.transactions / run.groups if run.groups else 0
    return (f"{run.transactions} transactions, {run.events} events, {run.binlog_bytes / 1e6:.1f} MB of binlog "
            f"in {run.binlog_files} file(s); the source took {run.source_seconds:.1f}s "
            f"({run.transactions / run.source_seconds:.0f} trx/s); source group commit: {run.groups} groups, "
            f"{avg:.1f} transactions per group on average, {run.grouped_trx} transactions in groups of 2+; "
            f"reader {run.events / run.reader_seconds:,.0f} events/s.")


# ---- tables ----------------------------------------------------------------------------------------------

def fmt_table(run: WorkloadRun) -> list[str]:
    pipe, best = run.pipe(), run.mariadb_best()
    lines = ["| method | seconds | trx/s | vs pipe | vs MariaDB best | client CPU s | target CPU s | peak RSS MB "
             "| content |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in run.results:
        u = r.usage
        verdict = cell(r.verdict) + (f" ({r.note})" if r.note else "")
        if r.seconds is None:
            lines.append(f"| {r.method.label} | — | — | — | — | {num(u.client_cpu_s, 2)} | — | {rss_cell(r)} "
                         f"| {verdict} |")
            continue
        lines.append(f"| {r.method.label} | {r.seconds:.2f} | {run.transactions / r.seconds:.0f} "
                     f"| {times(ratio(pipe, r))} | {times(ratio(best, r))} | {num(u.client_cpu_s, 2)} "
                     f"| {num(u.target_cpu_s, 2)} | {rss_cell(r)} | {verdict} |")
    return lines


def fmt_remote(rr: RemoteRun) -> list[str]:
    rtt = (f"`SELECT 1` round trip (median of 200) {rr.rtt_proxy_ms:.2f} ms through the proxy, "
           f"{rr.rtt_direct_ms:.2f} ms straight to the server's TCP port"
           if rr.rtt_proxy_ms is not None else "round trip not measured")
    lines = [f"Remote target: both methods connect over TCP to 127.0.0.1 through `benchmarks/delay_proxy.py`, "
             f"which delays every chunk by {rr.delay_ms:g} ms in each direction (order kept, no request/response "
             f"lock-step); {rtt}."]
    pipe = rr.result(PIPE.key)
    if rr.prefix:
        extra = ""
        if pipe is not None and pipe.ok:
            extra = (f" Linear extrapolation of the pipe to all {rr.total_transactions} transactions (not "
                     f"measured): {pipe.seconds * rr.total_transactions / rr.transactions:.0f}s.")
        lines[0] += (f" **Prefix only**: both methods replayed the first {rr.transactions} of the binlog's "
                     f"{rr.total_transactions} transactions (up to {rr.stop}); binreplay's target was compared "
                     f"with the pipe's.{extra}")
    else:
        lines[0] += f" The whole binlog ({rr.transactions} transactions), both targets compared with the source."
    lines += ["", "| method, remote target | seconds | trx/s | vs pipe (remote) | client CPU s | target CPU s "
                  "| peak RSS MB | content |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rr.results:
        u = r.usage
        if r.seconds is None:
            lines.append(f"| {r.method.label} | — | — | — | {num(u.client_cpu_s, 2)} | — | {rss_cell(r)} "
                         f"| {cell(r.verdict)} |")
            continue
        lines.append(f"| {r.method.label} | {r.seconds:.2f} | {rr.transactions / r.seconds:.0f} "
                     f"| {times(ratio(pipe, r))} | {num(u.client_cpu_s, 2)} | {num(u.target_cpu_s, 2)} | {rss_cell(r)} "
                     f"| {cell(r.verdict)} |")
    return lines


# ---- targets ----------------------------------------------------------------------------------------------

@dataclass
class Target:
    text: str
    state: str        # met | MISSED | not measured
    detail: str


def _quotient(num_r: Result | None, den_r: Result | None) -> tuple[float | None, str]:
    """num_r.seconds / den_r.seconds, or None and why not (a wrong or failed run gets no number)."""
    if num_r is None or den_r is None:
        return None, "not run"
    for r in (num_r, den_r):
        if not r.ok:
            return None, f"{r.method.key} {r.verdict.split(':')[0]}"
    return num_r.seconds / den_r.seconds, ""


def _single(text: str, value: float | None, why: str, good: bool, fmt: str) -> Target:
    if value is None:
        return Target(text, "MISSED" if "WRONG" in why or "FAILED" in why else "not measured", why)
    return Target(text, "met" if good else "MISSED", fmt)


def _speedup_target(text: str, reference: Result | None, r: Result | None, need: float) -> Target:
    q, why = _quotient(reference, r)
    detail = f"{q:.2f}x ({reference.seconds:.2f}s / {r.seconds:.2f}s)" if q is not None else ""
    return _single(text, q, why, q is not None and q >= need, detail)


def _each_workload(text: str, runs: list[WorkloadRun], num_key: str, den_key: str | None, limit: float,
                   at_most: bool) -> Target:
    """A time quotient checked on every workload: num/den <= limit (at_most) or >= limit."""
    parts, missed, measured = [], False, 0
    for run in runs:
        den = run.mariadb_best() if den_key is None else run.result(den_key)
        if den is None and den_key is None:
            parts.append(f"{run.workload.name} MariaDB best not measured (no correct parallel MariaDB run)")
            continue
        if at_most:
            q, why = _quotient(run.result(num_key), den)
        else:           # a speed-up: the reference's time over ours
            q, why = _quotient(den, run.result(num_key))
        if q is None:
            parts.append(f"{run.workload.name} {why}")
            missed |= "WRONG" in why or "FAILED" in why
            continue
        measured += 1
        bad = q > limit if at_most else q < limit
        missed |= bad
        parts.append(f"{run.workload.name} {q:.2f}{'x' if not at_most else ''}{' ✗' if bad else ''}")
    state = "MISSED" if missed else "met" if measured else "not measured"
    return Target(text, state, ", ".join(parts))


def targets(runs: list[WorkloadRun]) -> list[Target]:
    oltp = next((r for r in runs if r.workload.name == "oltp"), None)
    out = []
    if oltp is not None:
        default = oltp.result(BINREPLAY_DEFAULT.key)
        out.append(_speedup_target("OLTP: binreplay default >= 10x the pipe", oltp.pipe(), default, 10))
        out.append(_speedup_target("OLTP: binreplay default >= 2x MariaDB best", oltp.mariadb_best(), default, 2))
    out.append(_each_workload("no workload where binreplay default is slower than MariaDB best (speed-up >= 1)",
                              runs, BINREPLAY_DEFAULT.key, None, 1.0, at_most=False))
    out.append(_each_workload("--workers 8 time <= 1.10 x --workers 1 time", runs, "binreplay-w8", "binreplay-w1",
                              1.10, at_most=True))
    out.append(_each_workload("--preserve-commit-order costs <= 25% (--workers 8 with it / without it <= 1.25)",
                              runs, "binreplay-w8-pco", "binreplay-w8", 1.25, at_most=True))
    if oltp is not None and oltp.remote is not None:
        rr = oltp.remote
        t = _speedup_target("remote target (OLTP): binreplay default >= 50x the pipe", rr.result(PIPE.key),
                            rr.result(BINREPLAY_DEFAULT.key), 50)
        if rr.prefix and t.detail:
            t.detail += f", on the first {rr.transactions} transactions"
        out.append(t)
    else:
        out.append(Target("remote target (OLTP): binreplay default >= 50x the pipe", "not measured", "not run"))
    out.append(rss_target(runs))
    return out


def rss_target(runs: list[WorkloadRun]) -> Target:
    text = f"peak RSS of every binreplay run <= {RSS_LIMIT_MB} MB"
    measured = [(r, run) for run in runs
                for r in run.results + (run.remote.results if run.remote else [])
                if r.method.kind == "binreplay" and r.usage.peak_rss_mb is not None]
    if not measured:
        return Target(text, "not measured", "no binreplay run")
    r, run = max(measured, key=lambda p: p[0].usage.peak_rss_mb)
    anon = max((m.usage.anon_mb or 0) for m, _ in measured)
    peak = r.usage.peak_rss_mb
    return Target(text, "met" if peak <= RSS_LIMIT_MB else "MISSED",
                  f"max {peak:.0f} MB ({run.workload.name}, {r.method.label}; ru_maxrss, file pages included); "
                  f"anonymous memory at most {anon:.0f} MB")


def fmt_targets(ts: list[Target]) -> list[str]:
    return [f"- **{t.state}**: {t.text} — {t.detail}" for t in ts]


# ---- the sections ---------------------------------------------------------------------------------------

def report(args: argparse.Namespace, runs: list[WorkloadRun], started: float, command: str) -> str:
    out = header("Quick run" if args.quick else "Full run", args, started, command)
    picks = {}
    if runs:
        picks["largest binlog"] = max(runs, key=lambda r: r.binlog_bytes)
        picks["most events"] = max(runs, key=lambda r: r.events)
    for what, r in picks.items():
        if what == "most events" and r is picks["largest binlog"]:
            continue
        out.append(reader_line(r, what))
    out.append("")
    for dur in dict.fromkeys(r.durability for r in runs):
        group = [r for r in runs if r.durability == dur]
        out += [f"#### Targets, {dur} target", ""] + fmt_targets(targets(group)) + [""]
    for run in runs:
        out += [f"#### {run.workload.name}, {run.durability} target: {run.workload.title}", "", binlog_line(run), ""]
        out += fmt_table(run)
        out.append("")
        if run.remote is not None:
            out += fmt_remote(run.remote)
            out.append("")
    return "\n".join(out)


def large_report(args: argparse.Namespace, run: WorkloadRun, started: float, command: str) -> str:
    out = header("Large run", args, started, command)
    out += [reader_line(run, "large binlog"), "",
            f"Binlog: {binlog_line(run)} (The source ran with `sync_binlog=0`, "
            "`innodb_flush_log_at_trx_commit=2` for this one: a million fsyncs would take longer than the replay.)",
            ""]
    r = run.results[0]
    u = r.usage
    mbs = f"{run.binlog_bytes / 1e6 / r.seconds:.1f}" if r.seconds else "—"
    tps = f"{run.transactions / r.seconds:.0f}" if r.seconds else "—"
    out += ["| method | seconds | trx/s | binlog MB/s | client CPU s | target CPU s | peak RSS MB | content |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
            f"| {r.method.label} (`--progress json`) | {num(r.seconds, 2)} | {tps} | {mbs} | {num(u.client_cpu_s, 2)} "
            f"| {num(u.target_cpu_s, 2)} | {rss_cell(r)} | {cell(r.verdict)} |", ""]
    if run.progress is not None:
        first, last = run.progress
        out += ["Throughput over the replay, from binreplay's `--progress json` records (about one a second; "
                "split by transactions done, interpolated between records; bytes are up to the low-water mark). "
                "The replay starts at the `start` record, after the preflight read and preparing the target"
                + (f" ({run.preflight_s:.1f}s by binreplay's summary)." if run.preflight_s is not None else "."),
                "",
                "| part of the replay | seconds | transactions | trx/s | MB/s |", "|---|---:|---:|---:|---:|"]
        for s in (first, last):
            out.append(f"| {s.label} | {s.seconds:.1f} | {s.transactions} | {s.trx_per_s:.0f} | {s.mb_per_s:.1f} |")
        change = last.trx_per_s / first.trx_per_s if first.trx_per_s else None
        out += ["", f"Last tenth / first tenth: {times(change)} (transactions/s).", ""]
    else:
        out += ["No throughput split: the progress records could not be read.", ""]
    gb = run.binlog_bytes / 1e9
    checks = [
        Target(">= 1,000,000 transactions", "met" if run.transactions >= 1_000_000 else "MISSED",
               f"{run.transactions:,}"),
        Target(">= 2 GB of binlog", "met" if run.binlog_bytes >= 2e9 else "MISSED", f"{gb:.2f} GB"),
        Target("content identical to the source after the replay", "met" if r.ok else "MISSED", r.verdict[:200]),
        rss_target([run]),
    ]
    out += ["Targets:", ""] + fmt_targets(checks) + [""]
    return "\n".join(out)


# ---- chart ----------------------------------------------------------------------------------------------

def chart(runs: list[WorkloadRun], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def plain(label: str) -> str:
        return label.replace("`", "").replace("\\|", "|")

    durabilities = sorted({r.durability for r in runs})
    names = list(dict.fromkeys(r.workload.name for r in runs))
    labels = list(dict.fromkeys(plain(r.method.label) for run in runs for r in run.results))
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
            by_label = {plain(r.method.label): r for r in run.results}
            for y, label in enumerate(labels):
                r = by_label.get(label)
                if r is None:
                    continue
                v = ratio(run.pipe(), r)
                if v is not None:
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
