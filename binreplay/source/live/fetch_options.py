"""What `binreplay fetch` (and `replay --source-host`) is asked to fetch, and what a fetch reports."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.errors import UsageError
from binreplay.server.connection import ServerConfig


def random_server_id() -> int:
    """A server_id no real replica is likely to use (the source drops a replica whose id another takes)."""
    return random.randint(1 << 30, (1 << 32) - 1)


@dataclass
class FetchOptions:
    source: ServerConfig
    out: Path
    start_file: str | None = None       # default: resume from `out`, else the source's oldest binlog
    start_gtid: str | None = None       # MariaDB: start with the file holding this GTID position
    exclude_gtids: str | None = None    # MySQL: start with the file holding the first GTID not in this set
    stop_file: str | None = None        # stop once this file is complete
    follow: bool = False                # wait for new events like a replica, until stopped
    stop_datetime: int | None = None    # stop before the first transaction at or after this time
    stop_gtid: str | None = None        # MariaDB: stop after these GTIDs
    server_id: int = field(default_factory=random_server_id)
    heartbeat_s: float = 5.0
    retry_for_s: float = 60.0           # give up (exit 4, resumable) after the source is gone this long


@dataclass
class FetchStats:
    files: list[str] = field(default_factory=list)   # names written to, in order
    events: int = 0
    bytes: int = 0
    reconnects: int = 0
    position: tuple[str, int] | None = None          # end of the spool's last complete transaction
    stop_reason: str | None = None


def check_fetch_options(opts: FetchOptions) -> None:
    if opts.start_file and (opts.start_gtid or opts.exclude_gtids):
        raise UsageError("give the start as a file or as a GTID position, not both")
    if opts.follow and opts.stop_file:
        raise UsageError("--stop-never and --stop-file exclude each other")
