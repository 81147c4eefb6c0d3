"""What a method costs: wall time, CPU of the client processes (wait4) and of the target server (/proc).

Every client side of a method (binreplay, or mariadb-binlog and mariadb for the pipe) runs as a
child process reaped with os.wait4, whose rusage is that process's own: user+system CPU and peak
RSS (ru_maxrss). RUSAGE_CHILDREN deltas would mix in the sandbox servers this benchmark also
starts and reaps. binreplay goes through rusage_launcher.py, so that its ru_maxrss does not start
at this (larger) process's RSS, see there. The target server's CPU is read from
/proc/<pid>/stat (utime+stime) before and after the method: it is not our child until it exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LAUNCHER = Path(__file__).resolve().parent / "rusage_launcher.py"


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a running process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces: split after its ')'.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])    # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


@dataclass
class ChildUsage:
    """One or more child processes run to completion."""
    returncodes: list[int]
    seconds: float             # wall time from the first start to the last exit
    cpu_s: float               # user + system CPU, summed over the processes
    maxrss_mb: float           # the largest ru_maxrss among them
    anon_mb: float | None      # peak RssAnon (sampled), run_measured only
    stderr: str                # the tail of their stderr

    @property
    def ok(self) -> bool:
        return all(rc == 0 for rc in self.returncodes)


def run_pipeline(commands: list[list[str]], *, stderr_path: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> ChildUsage:
    """Run `commands` connected stdout -> stdin (a shell pipeline without the shell) and reap each with wait4.

    stderr goes to a file, not a pipe, so a chatty child (--progress json over a long run) never
    blocks on a full pipe and the whole output stays available afterwards. ru_maxrss here includes
    this process's RSS at the spawn (see rusage_launcher.py): use run_measured for a peak RSS.
    """
    procs: list[subprocess.Popen] = []
    with open(stderr_path, "wb") as err:
        t0 = time.monotonic()
        stdin = subprocess.DEVNULL
        try:
            for i, cmd in enumerate(commands):
                last = i == len(commands) - 1
                p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stderr=err,
                                     stdout=subprocess.DEVNULL if last else subprocess.PIPE)
                if p.stdout is not None:
                    stdin = p.stdout
                procs.append(p)
        except OSError:
            for p in procs:       # e.g. the second program is missing: do not leave the first running
                p.kill()
                p.wait()
            raise
        for p in procs[:-1]:
            p.stdout.close()   # only the next process holds the pipe: a reader's exit then ends the writer
        codes, cpu, maxrss = [], 0.0, 0
        for p in procs:
            _pid, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)    # reaped here: Popen must not wait again
            codes.append(p.returncode)
            cpu += usage.ru_utime + usage.ru_stime
            maxrss = max(maxrss, usage.ru_maxrss)
        seconds = time.monotonic() - t0
    return ChildUsage(codes, seconds, cpu, maxrss / 1024, None, _tail(stderr_path))


def run_measured(cmd: list[str], *, stderr_path: Path, usage_path: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> ChildUsage:
    """Run `cmd` under rusage_launcher.py: its own wall time, CPU, ru_maxrss and peak RssAnon."""
    launcher = [sys.executable, str(LAUNCHER), str(usage_path), "--"]
    usage_path.unlink(missing_ok=True)
    outer = run_pipeline([launcher + cmd], stderr_path=stderr_path, cwd=cwd, env=env)
    try:
        u = json.loads(usage_path.read_text())
    except (OSError, ValueError):
        return outer      # the launcher itself failed: its exit code and stderr say why
    return ChildUsage([u["returncode"]], u["seconds"], u["cpu_s"], u["maxrss_kb"] / 1024, u["anon_kb"] / 1024,
                      outer.stderr)


def _tail(path: Path) -> str:
    return path.read_bytes()[-4000:].decode(errors="replace")


# ---- throughput over a run, from binreplay's --progress json lines ---------------------------------------------

@dataclass
class Slice:
    """The run between two fractions of its transactions."""
    label: str
    seconds: float
    transactions: int
    bytes: int

    @property
    def trx_per_s(self) -> float:
        return self.transactions / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ProgressLog:
    """binreplay's --progress json records: (time, transactions_done, bytes_done) points, and its summary."""
    points: list[tuple[float, int, int]]
    summary: dict

    @property
    def setup_s(self) -> float | None:
        """From binreplay's start to its first transaction: the preflight read and preparing the target."""
        s = self.summary
        return s["elapsed_s"] - s["apply_s"] if "elapsed_s" in s and "apply_s" in s else None


def read_progress(stderr_path: Path) -> ProgressLog:
    """The `start` record (written when applying begins) is the point (its time, 0, 0); `progress`
    records follow about once a second; the `summary` record gives the end point."""
    points: list[tuple[float, int, int]] = []
    summary: dict = {}
    for line in stderr_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        kind = rec.get("type")
        if kind == "start":
            points.append((rec["time"], 0, 0))
        elif kind == "progress":
            points.append((rec["time"], rec["transactions_done"], rec["bytes_done"]))
        elif kind == "summary":
            summary = rec
            done = rec.get("applied", 0) + rec.get("already_applied", 0) + rec.get("skipped", 0)
            points.append((rec["time"], done, rec.get("bytes_done") or rec.get("bytes_total") or 0))
    return ProgressLog(points, summary)


def _time_at(points: list[tuple[float, int, int]], trx: float) -> float:
    """When `trx` transactions were done, interpolated linearly between progress records."""
    for (t0, n0, _), (t1, n1, _) in zip(points, points[1:]):
        if n0 <= trx <= n1:
            return t0 if n1 == n0 else t0 + (t1 - t0) * (trx - n0) / (n1 - n0)
    return points[-1][0]


def _bytes_at(points: list[tuple[float, int, int]], trx: float) -> float:
    for (_, n0, b0), (_, n1, b1) in zip(points, points[1:]):
        if n0 <= trx <= n1:
            return b0 if n1 == n0 else b0 + (b1 - b0) * (trx - n0) / (n1 - n0)
    return points[-1][2]


def tenths(points: list[tuple[float, int, int]]) -> tuple[Slice, Slice] | None:
    """Throughput over the first and the last tenth of the transactions (0-10% and 90-100%).

    Split by work done, not by time: a replay that slows down spends longer in its last tenth,
    and that is what the comparison must show. Progress records come about once a second, so
    on a run of minutes the interpolation error is small.
    """
    if len(points) < 3 or points[-1][1] <= 0:
        return None
    total = points[-1][1]
    out = []
    for label, lo, hi in (("first tenth", 0.0, 0.1), ("last tenth", 0.9, 1.0)):
        a, b = lo * total, hi * total
        out.append(Slice(label, _time_at(points, b) - _time_at(points, a), round(b - a),
                         round(_bytes_at(points, b) - _bytes_at(points, a))))
    return out[0], out[1]
