"""Fault-injection helpers: kill chains, the invariants checked after every fault, and the
reliability table (docs/reliability.md) the fault tests fill in.

Invariants (issue 4): the target equals the source by content; every transaction is applied
exactly once (a ledger table without a key shows a lost or a doubled transaction as a missing
or an extra row); the resume point never moves backwards across restarts.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.devtools.sandbox import Sandbox

from helpers import _tool, assert_same_content

# --- invariants -----------------------------------------------------------------------------

def lost_and_duplicated(source: Sandbox, target: Sandbox, table: str) -> tuple[int, int]:
    """Compare a keyless table as multisets: rows the source has and the target lacks were
    lost, rows the target has more often than the source were applied twice."""
    sql = f"SELECT * FROM {table}"
    want = Counter(tuple(r) for r in source.execute(sql))
    have = Counter(tuple(r) for r in target.execute(sql))
    return sum((want - have).values()), sum((have - want).values())


def assert_exactly_once(source: Sandbox, target: Sandbox, ledger: str) -> tuple[int, int]:
    """Invariants 1 and 2 after a fault and its rerun: nothing lost, nothing applied twice (counted
    on the keyless ledger), and the target equal to the source table by table. Returns the counts."""
    lost, dup = lost_and_duplicated(source, target, ledger)
    assert (lost, dup) == (0, 0), f"{lost} transactions lost, {dup} applied twice"
    assert_same_content(source, target)
    return lost, dup


def resume_mark(target: Sandbox, schema: str = "binreplay") -> tuple[int, int] | None:
    """The low-water mark of the latest run (file index, position), or None before any."""
    rows = target.execute(
        f"SELECT c.file_index, c.pos FROM `{schema}`.checkpoint c WHERE c.run_id = "
        f"(SELECT MAX(run_id) FROM `{schema}`.runs WHERE state <> 'abandoned') "
        "ORDER BY c.file_index DESC, c.pos DESC LIMIT 1") if _has_progress(target, schema) else []
    return (int(rows[0][0]), int(rows[0][1])) if rows else None


def _has_progress(target: Sandbox, schema: str) -> bool:
    return bool(target.execute("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND "
                               "TABLE_NAME='checkpoint'", schema))


# --- a restorable backup image of the target ----------------------------------------------

@dataclass
class BackupImage:
    """The target's schemas as a dump, so a new kill chain can start again from the backup."""

    schemas: list[str]
    dump: bytes = b""

    def save(self, target: Sandbox) -> BackupImage:
        self.dump = subprocess.run([_tool("mariadb-dump"), *target.client_args(), "--single-transaction",
                                    "--hex-blob", "--routines", "--triggers", "--databases", *self.schemas],
                                   check=True, capture_output=True).stdout
        return self

    def restore(self, target: Sandbox, progress_schema: str = "binreplay") -> None:
        for schema in [*self.schemas, progress_schema]:
            target.execute(f"DROP DATABASE IF EXISTS `{schema}`")
        subprocess.run([_tool("mariadb"), *target.client_args()], input=self.dump, check=True, capture_output=True)


# --- kill -9 at random moments --------------------------------------------------------------

@dataclass
class ChainResult:
    kills: int = 0
    completed_chains: int = 0
    lost: int = 0
    duplicated: int = 0
    resume_s: list[float] = field(default_factory=list)
    marks_checked: int = 0


def start_replay(files: list[str], target: Sandbox, start: tuple[str, int], *extra: str,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen, float]:
    proc = subprocess.Popen([sys.executable, "-m", "binreplay", "replay", *files, *target.connection_flags(),
                             "--start-position", str(start[1]), "--progress", "json", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    return proc, time.time()


def wait_for_progress(proc: subprocess.Popen, seen: list[str], *, more_than: int = 0,
                      timeout: float = 120) -> dict | None:
    """Read a `--progress json` replay's stderr (into `seen`) until a progress record shows more than
    `more_than` transactions applied; None if the process ended first. Faults injected after this
    land while the replay is really applying, however fast the machine is."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            return None
        seen.append(line)
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("type") == "progress" and rec.get("applied", 0) > more_than:
                return rec
    raise AssertionError("no progress within the timeout")


def time_to_resume(stderr: str, launched: float) -> float | None:
    """Seconds from launch until the run started applying (after reading, connecting, resuming)."""
    for line in stderr.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("type") == "start":
                return rec["time"] - launched
    return None


def kill_chains(source: Sandbox, target: Sandbox, start: tuple[str, int], files: list[str], image: BackupImage,
                *, kills: int, seed: int, ledger: str, extra: tuple[str, ...] = (),
                delay: tuple[float, float] = (0.4, 1.4)) -> ChainResult:
    """kill -9 a parallel replay at random moments, `kills` times in all. Each kill is followed by a
    check that the resume point did not move backwards; each replay that runs to the end (a chain)
    is checked against the source by content and by the ledger, then the target goes back to the
    backup and a new chain begins."""
    rnd = random.Random(seed)
    result = ChainResult()
    last_mark: tuple[int, int] | None = None
    while result.kills < kills:
        proc, launched = start_replay(files, target, start, *extra)
        time.sleep(rnd.uniform(*delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
            result.kills += 1
            mark = resume_mark(target)
            assert last_mark is None or mark is None or mark >= last_mark, \
                f"the resume point moved backwards: {last_mark} -> {mark}"
            assert not (last_mark is not None and mark is None), "the resume point disappeared"
            last_mark = mark or last_mark
            result.marks_checked += 1
        else:
            _, err = proc.communicate()
            assert proc.returncode == 0, err
            _finish_chain(source, target, ledger, result)
            image.restore(target)
            last_mark = None
        took = time_to_resume(err, launched)
        if took is not None:
            result.resume_s.append(took)
    proc, launched = start_replay(files, target, start, *extra)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    took = time_to_resume(err, launched)
    if took is not None:
        result.resume_s.append(took)
    _finish_chain(source, target, ledger, result)
    return result


def _finish_chain(source: Sandbox, target: Sandbox, ledger: str, result: ChainResult) -> None:
    lost, dup = assert_exactly_once(source, target, ledger)
    result.lost += lost
    result.duplicated += dup
    result.completed_chains += 1


# --- the reliability table --------------------------------------------------------------------

@dataclass
class _Row:
    injected: int = 0
    lost: int = 0
    duplicated: int = 0
    resume_s: list[float] = field(default_factory=list)
    outcome: str = ""


class ReliabilityLog:
    """Collects one row per fault kind; written as docs/reliability.md when asked
    (BINREPLAY_RELIABILITY_OUT=<path>), with the command that produced it."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}

    def record(self, fault: str, *, injected: int, lost: int = 0, duplicated: int = 0,
               resume_s: list[float] | float | None = None, outcome: str = "identical to the source") -> None:
        row = self.rows.setdefault(fault, _Row())
        row.injected += injected
        row.lost += lost
        row.duplicated += duplicated
        if resume_s is not None:
            row.resume_s += resume_s if isinstance(resume_s, list) else [resume_s]
        row.outcome = outcome

    def write(self, path: Path, command: str, elapsed_s: float) -> None:
        lines = [
            "# Reliability: faults injected into real replays",
            "",
            "Generated by the fault tests themselves from a real run (the numbers are counted, not typed):",
            "",
            "```sh",
            command,
            "```",
            "",
            f"Run on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, MariaDB sandboxes; the run took "
            f"{elapsed_s / 60:.1f} min. *Lost* and *duplicated* count source transactions missing from, or "
            "applied twice to, the target after the fault and a rerun (a keyless ledger table makes both "
            "visible); after every fault the target was also compared with the source table by table, by "
            "content, and the resume point was checked never to move backwards. *Time to resume* is from "
            "launching the rerun to its first applied transaction being possible (preflight read, connect, "
            "progress records loaded): median / max.",
            "",
            "| fault | injected | transactions lost | transactions duplicated | time to resume (s) | result |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for fault, row in self.rows.items():
            times = (f"{statistics.median(row.resume_s):.2f} / {max(row.resume_s):.2f}" if row.resume_s else "–")
            lines.append(f"| {fault} | {row.injected} | {row.lost} | {row.duplicated} | {times} | {row.outcome} |")
        # The "Bad input" section after this table is the fuzz tests' (bad_input_report.py): kept.
        old = path.read_text() if path.exists() else ""
        kept = old[old.index("\n## Bad input"):] if "\n## Bad input" in old else ""
        path.write_text("\n".join(lines) + "\n" + kept)
