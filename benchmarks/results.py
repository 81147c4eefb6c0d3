"""The benchmark's data: methods, what one run of a method gave, and a workload's runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from measure import Slice
from workloads import Workload

# The two MariaDB parallel modes "MariaDB best" is the better of (same run, same binlog).
MARIADB_BEST = ("mariadb-conservative-8", "mariadb-optimistic-8")


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    kind: str                         # pipe | mariadb | binreplay
    threads: int = 0                  # mariadb: slave_parallel_threads
    mode: str = ""                    # mariadb: slave_parallel_mode
    flags: tuple[str, ...] = ()       # binreplay: CLI flags beyond target, binlogs and --from-backup


PIPE = Method("pipe", "`mariadb-binlog \\| mariadb`", "pipe")
BINREPLAY_DEFAULT = Method("binreplay-default", "binreplay, default flags", "binreplay")

# The binreplay runs of every workload in the default bench, and the targets that compare them.
BINREPLAY_STANDARD = [
    BINREPLAY_DEFAULT,
    Method("binreplay-w1", "binreplay --workers 1", "binreplay", flags=("--workers", "1")),
    Method("binreplay-w8", "binreplay --workers 8", "binreplay", flags=("--workers", "8")),
    Method("binreplay-w8-pco", "binreplay --workers 8 --preserve-commit-order", "binreplay",
           flags=("--workers", "8", "--preserve-commit-order")),
]


def methods_for(quick: bool, dependencies: list[str] | None, workers: list[int] | None) -> list[Method]:
    """The pipe, MariaDB's replication applier (serial, 8 threads in both parallel modes), binreplay.

    binreplay: the four standard runs, plus a sweep of --workers x --dependency in a full run
    (or the one asked for with --dependencies / --workers).
    """
    ms = [
        PIPE,
        Method("mariadb-serial", "MariaDB SQL thread, serial (relay-log trick)", "mariadb", 0, "none"),
        Method("mariadb-conservative-8", "MariaDB parallel, conservative, 8 threads", "mariadb", 8, "conservative"),
        Method("mariadb-optimistic-8", "MariaDB parallel, optimistic, 8 threads", "mariadb", 8, "optimistic"),
        *BINREPLAY_STANDARD,
    ]
    if dependencies or workers:
        combos = [(d, w) for d in (dependencies or ["row", "table", "commit-order"])
                  for w in (workers or [1, 2, 4, 8, 16])]
    elif quick:
        combos = []
    else:
        combos = [(d, w) for d in ("row", "table", "commit-order") for w in (1, 2, 4, 8, 16)]
    for d, w in combos:
        ms.append(Method(f"binreplay-{d}-{w}", f"binreplay --workers {w} --dependency {d}", "binreplay",
                         flags=("--workers", str(w), "--dependency", d)))
    return ms


@dataclass
class Usage:
    """What a run cost besides wall time. None: does not apply (or was not measured)."""
    client_cpu_s: float | None = None    # user+sys of binreplay, or of mariadb-binlog + mariadb for the pipe
    target_cpu_s: float | None = None    # user+sys of the target mariadbd during the method
    peak_rss_mb: float | None = None     # binreplay's ru_maxrss (includes file pages it touched)
    anon_mb: float | None = None         # binreplay's peak RssAnon (sampled): its own heap


@dataclass
class Result:
    method: Method
    seconds: float | None
    verdict: str                 # identical | reference (remote prefix pipe) | WRONG: ... | FAILED: ...
    note: str = ""
    usage: Usage = field(default_factory=Usage)
    log: Path | None = None      # stderr of its client processes (kept with --keep)

    @property
    def ok(self) -> bool:
        return self.seconds is not None and self.verdict.startswith(("identical", "reference"))


def ratio(reference: Result | None, r: Result | None) -> float | None:
    """How many times faster `r` is than `reference`; None unless both are correct runs."""
    if reference is None or r is None or not reference.ok or not r.ok:
        return None
    return reference.seconds / r.seconds


@dataclass
class RemoteRun:
    """The pipe and binreplay against a target that is 'remote': behind the delay proxy."""
    delay_ms: float
    rtt_proxy_ms: float | None = None       # median SELECT 1 round trip through the proxy
    rtt_direct_ms: float | None = None      # and straight to the server's TCP port
    transactions: int = 0                   # replayed by each method (all, or the prefix)
    total_transactions: int = 0             # in the whole binlog
    stop: str = ""                          # file:pos the prefix ends at ('' = the whole binlog)
    results: list[Result] = field(default_factory=list)

    @property
    def prefix(self) -> bool:
        return bool(self.stop)

    def result(self, key: str) -> Result | None:
        return next((r for r in self.results if r.method.key == key), None)


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
    remote: RemoteRun | None = None
    progress: tuple[Slice, Slice] | None = None   # --large: the first and the last tenth of the replay
    preflight_s: float | None = None        # --large: binreplay's time before its first transaction

    def result(self, key: str) -> Result | None:
        return next((r for r in self.results if r.method.key == key), None)

    def pipe(self) -> Result | None:
        return self.result(PIPE.key)

    def pipe_seconds(self) -> float | None:
        p = self.pipe()
        return p.seconds if p is not None and p.ok else None

    def mariadb_best(self) -> Result | None:
        """The faster correct run of MariaDB's two parallel modes at 8 threads."""
        ok = [r for r in self.results if r.method.key in MARIADB_BEST and r.ok]
        return min(ok, key=lambda r: r.seconds) if ok else None
