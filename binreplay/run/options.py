"""What a replay run is asked to do: every flag of `binreplay replay`, as one dataclass."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.schedule.limits import BATCH
from binreplay.server.connection import ServerConfig
from binreplay.server.reconnect import DEFAULT_RECONNECT_TIMEOUT_S
from binreplay.source.backup_meta import backup_identity
from binreplay.source.filters import Filters
from binreplay.source.selection import SelectionArgs, UnreachedStop


def default_workers() -> int:
    """One connection per core, at most 8 (measured: more threads than cores only add contention)."""
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class ReplayOptions:
    binlogs: list[Path]
    target: ServerConfig = field(default_factory=ServerConfig)
    start_position: int | None = None
    stop_position: int | None = None
    start_datetime: str | None = None
    stop_datetime: str | None = None
    start_gtid: str | None = None
    stop_gtid: str | None = None
    include_gtids: str | None = None
    exclude_gtids: str | None = None
    from_backup: Path | None = None
    preserve_gtids: bool = False
    dry_run: bool = False
    restart: bool = False
    target_restored: bool = False            # with restart: the backup was restored again (see begin_run)
    workers: int = field(default_factory=lambda: default_workers())
    dependency: str = "row"
    group_commit: bool = True
    group_max_trx: int = BATCH.max_transactions
    group_max_bytes: int = BATCH.max_bytes
    preserve_commit_order: bool = False
    retries: int = 10
    reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT_S   # seconds to wait for a target that went away
    progress_schema: str = "binreplay"
    preflight: bool = True
    early_apply: bool = True                 # apply while the preflight read validates, commit after (run/early.py)
    apply_mode: str = "binlog"               # "binlog" (exact BINLOG statements) or "sql" (apply/sql_rows.py)
    allow_triggers: bool = False             # --apply sql: target triggers would fire on replayed rows
    filters: Filters = field(default_factory=Filters)
    allow_same_server: bool = False          # replay although the target has the binlogs' server_id/uuid
    target_binlog: str = "on"                # "on": replayed transactions go to the target's binlog too; "off": not
    check_target: bool = False               # only check the target (privileges, schema, progress), write nothing
    unreached_stop: UnreachedStop = UnreachedStop.ERROR   # a --stop-datetime no event reaches (WARN: allowed)

    def selection(self) -> SelectionArgs:
        """The start/stop flags, as `source.selection` resolves them into bounds."""
        return SelectionArgs(
            start_position=self.start_position, stop_position=self.stop_position,
            start_datetime=self.start_datetime, stop_datetime=self.stop_datetime,
            start_gtid=self.start_gtid, stop_gtid=self.stop_gtid, include_gtids=self.include_gtids,
            exclude_gtids=self.exclude_gtids, from_backup=self.from_backup, unreached_stop=self.unreached_stop)

    def fingerprint(self) -> str:
        """`fingerprint_fields` as the digest the progress records keep."""
        return hashlib.sha256(json.dumps(self.fingerprint_fields(), sort_keys=True).encode()).hexdigest()

    def fingerprint_fields(self) -> dict:
        """What identifies a replay for resuming: where it starts and what it selects. A backup is
        identified by its coordinates, so the same backup by another path (absolute, relative, the
        directory or its metadata file) is the same replay.
        Stop bounds are left out on purpose: a rerun may extend a replay to a later stop point."""
        return {
            "start_file": self.binlogs[0].name if self.binlogs else None,
            "start_position": self.start_position, "start_datetime": self.start_datetime,
            "start_gtid": self.start_gtid, "include_gtids": self.include_gtids,
            "exclude_gtids": self.exclude_gtids,
            "from_backup": backup_identity(self.from_backup) if self.from_backup else None,
            "preserve_gtids": self.preserve_gtids,
            # What the filters select is part of the replay's identity (only when given: older runs resume).
            **({"filters": repr(self.filters)} if self.filters.active else {}),
        }
