"""What a replay run reports: the start line said before anything is applied (`RunStart`) and the
counts and positions every reporter shows and the summary ends with (`Summary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from binreplay.run.replica_position import ReplicaPosition


@dataclass(frozen=True)
class RunStart:
    """Which server a run writes to and from where, said once before anything is applied."""

    target: str                  # host:port or socket
    version: str
    server_id: int
    log_bin: bool                # the target has a binlog
    target_binlog: str           # --target-binlog: "on" (replayed transactions logged there too) or "off"
    start: str                   # file:pos, and the GTID state when one selects the start
    start_from: str              # where that start point came from (flag, --from-backup file, progress records)
    stop: str                    # the stop point, or "the end of the binlogs"

    def line(self) -> str:
        binlog = f"binlog {self.target_binlog}" if self.log_bin else "no binlog"
        logged = ("replayed transactions are logged" if self.log_bin and self.target_binlog == "on"
                  else "replayed transactions are not logged")
        return (f"binreplay: target {self.target} ({self.version}, server_id {self.server_id}, {binlog}: {logged}); "
                f"start {self.start} ({self.start_from}); stop {self.stop}")


@dataclass
class Summary:
    outcome: str = "running"           # complete, stopped (at a stop point), interrupted, failed, dry-run
    applied: int = 0                   # transactions applied by this process
    already_applied: int = 0           # found in the progress records and skipped on resume
    skipped: int = 0                   # outside the start/stop/GTID selection
    ddl: int = 0
    row_events: int = 0
    bytes_read: int = 0
    elapsed_s: float = 0.0
    last_applied: str | None = None    # file:end position of the last transaction applied
    last_gtid: str | None = None
    stop_reason: str | None = None
    start_reason: str | None = None    # which event and transaction decided --start-datetime
    warnings: list[str] = field(default_factory=list)
    run_id: int | None = None
    resumed_from: str | None = None
    retries: int = 0                   # groups retried after a deadlock, lock wait or lost connection
    busy_s: float = 0.0                # worker-seconds spent applying
    apply_s: float = 0.0               # wall time since the workers started (after reading ahead, connecting)
    workers: int = 0
    workers_busy: int = 0              # applying a group right now
    bytes_done: int = 0                # binlog bytes from the selection's start to the low-water mark
    transactions_done: int = 0         # source transactions from the selection's start to the mark (all runs)
    bytes_total: int = 0
    low_water: str | None = None       # everything up to here is applied (the resume point)
    source_time: int | None = None     # source commit time (epoch s) of the newest applied transaction
    worker_states: list[str] = field(default_factory=list)   # one line per worker
    binlog_files: str | None = None    # which binlog files were read, and from where (names.files_used)
    replica: ReplicaPosition | None = None   # where a replica of the source continues (a complete run)

    def add_warning(self, message: str) -> None:
        """A warning the run gave, listed again in the summary."""
        self.warnings.append(message)

    def note_stop_reason(self, reason: str | None) -> None:
        """Why the run stopped, unless it already says why."""
        self.stop_reason = self.stop_reason or reason

    def merge_round(self, other: Summary) -> None:
        """Add one replay round of a run made of rounds (`replay --follow`): counts add up, the latest
        round says what was skipped and which run it was, the first what it resumed from."""
        self.applied += other.applied
        self.ddl += other.ddl
        self.row_events += other.row_events
        self.skipped = other.skipped
        self.already_applied = self.already_applied or other.already_applied
        self.last_applied = other.last_applied or self.last_applied
        self.last_gtid = other.last_gtid or self.last_gtid
        self.run_id = other.run_id
        self.binlog_files = other.binlog_files or self.binlog_files
        self.warnings.extend(other.warnings)
        self.resumed_from = self.resumed_from or other.resumed_from
        self.start_reason = self.start_reason or other.start_reason
        self.replica = other.replica or self.replica

    def end(self, outcome: str, elapsed_s: float) -> None:
        """How the run ended, and how long it took."""
        self.outcome = outcome
        self.elapsed_s = elapsed_s

    @property
    def rate(self) -> float:
        return self.applied / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def parallelism(self) -> float:
        """How many workers were applying at once on average: the speed-up over applying the
        same groups one after another on one connection."""
        return self.busy_s / self.apply_s if self.apply_s > 0 else 0.0
