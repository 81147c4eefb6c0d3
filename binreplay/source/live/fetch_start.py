"""Where a fetch starts: what the source has, and how far the spool already got.

The spool's files are the only fetch state: its last file is cut back to its last transaction
boundary (spool.trim_to_boundary) and the fetch asks the source for what comes after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.binlog.names import binlog_sort_key
from binreplay.errors import BadInputError, Fault, PrivilegeError, SourceError, classify, describe
from binreplay.model import FormatDescription
from binreplay.server.connection import ServerConfig
from binreplay.source.live.fetch_options import FetchOptions
from binreplay.source.live.spool import SpoolFile, spool_files, spool_io, spool_sequence, trim_to_boundary


@dataclass(frozen=True)
class SourceInfo:
    flavor: str                  # "mariadb" or "mysql"
    crc32: bool                  # binlog_checksum = CRC32: every event ends with its checksum
    binlogs: list[str]           # SHOW BINARY LOGS, oldest first


def inspect_source(conn, cfg: ServerConfig) -> SourceInfo:
    """Flavour, checksum setting and binlog list of the source; fails early on a missing privilege."""
    import pymysql

    flavor = "mariadb" if "mariadb" in conn.get_server_info().lower() else "mysql"
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@global.log_bin, @@global.binlog_checksum")
            log_bin, checksum = cur.fetchone()
            if not int(log_bin):
                raise BadInputError(f"the source {cfg.where} has no binary log (log_bin is OFF)")
            cur.execute("SHOW BINARY LOGS")
            available = [str(r[0]) for r in cur.fetchall()]
    except pymysql.MySQLError as exc:
        if classify(exc) is Fault.PRIVILEGE:
            grant = "BINLOG MONITOR (or REPLICATION CLIENT)" if flavor == "mariadb" else "REPLICATION CLIENT"
            raise PrivilegeError(f"the source user lacks {grant}, needed for SHOW BINARY LOGS") from None
        raise SourceError(f"source {cfg.where}: {describe(exc)}") from None
    return SourceInfo(flavor, str(checksum).upper() == "CRC32", available)


@dataclass
class ResumePoint:
    """Where to ask the source to start, and the spool as the fetch takes it over."""
    name: str
    pos: int
    files: list[str] = field(default_factory=list)       # spool files kept, in order
    file: SpoolFile | None = None                        # the kept last file, open for appending
    fde: FormatDescription | None = None                 # its FORMAT_DESCRIPTION
    position: tuple[str, int] | None = None              # end of the spool's last complete transaction
    complete: list[Path] = field(default_factory=list)   # kept files (where a reached stop point may be)


def resume_point(opts: FetchOptions, available: list[str], file_of_gtid_position: Callable[[], str]) -> ResumePoint:
    """After what the spool already holds, else at the start file (or the file of the start GTID position)."""
    first = opts.start_file
    if first is None and (opts.start_gtid is not None or opts.exclude_gtids is not None):
        existing = spool_files(opts.out)
        first = existing[0].name if existing else file_of_gtid_position()
    if first is None:
        existing = spool_files(opts.out)
        if not existing and not available:
            raise BadInputError("the source has no binary logs")
        first = existing[0].name if existing else available[0]
    existing = spool_sequence(opts.out, first)
    files = [p.name for p in existing]
    if not existing:
        _require_on_source(first, available)
        return ResumePoint(first, 4, files)
    last = existing[-1]
    trimmed = trim_to_boundary(last)
    point = ResumePoint(trimmed.next_name, trimmed.next_pos, files, trimmed.file, trimmed.fde)
    if trimmed.removed:
        existing.pop()
        files.remove(last.name)
    elif trimmed.next_name != last.name:
        _require_on_source(trimmed.next_name, available, after=last.name)
    if existing:
        kept = existing[-1]
        with spool_io("read", kept):
            point.position = (kept.name, trimmed.end if kept is last else kept.stat().st_size)
        point.complete = existing
    return point


def _require_on_source(name: str, available: list[str], after: str | None = None) -> None:
    if name in available:
        return
    have = f"it has {available[0]} to {available[-1]}" if available else "it has none"
    if after is not None and available and binlog_sort_key(name) > binlog_sort_key(available[-1]):
        return  # the next file does not exist yet (the source restarted and will create it)
    raise BadInputError(f"binlog {name} is not on the source (purged, or a wrong name); {have}")
