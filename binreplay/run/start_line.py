"""What a run says before it applies anything: which server it writes to, and from where in the
binlogs (the resolved start point and where it came from), so a wrong target or a wrong start is
seen before it matters. Also the one refusal made on that basis: the server that wrote the
binlogs is not a target for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog.file import BinlogFile
from binreplay.binlog.gtid_events import parse_mysql_gtid
from binreplay.binlog.header import body_of
from binreplay.errors import SameServerError
from binreplay.model import BinlogPosition
from binreplay.report.summary import RunStart
from binreplay.run.options import ReplayOptions
from binreplay.server.connection import ServerConfig, ServerInfo
from binreplay.source.gtid import format_mariadb_gtid_list
from binreplay.source.selection import Bounds

# How far into a MySQL binlog its writer's server_uuid is looked for (its first GTID event).
_UUID_SCAN_EVENTS = 64


@dataclass(frozen=True)
class BinlogWriter:
    """The server that wrote a binlog file: its FORMAT_DESCRIPTION's server_id, and (MySQL, when
    the file has a GTID of its own) its server_uuid."""

    flavor: str
    server_id: int
    server_uuid: str | None


def binlog_writer(path: Path) -> BinlogWriter:
    f = BinlogFile(path)
    flavor, server_id, uuid = "mariadb", 0, None
    # (Leaving the loop early ends the scan: the generator closes its file when it is dropped.)
    for i, (type_code, start, end) in enumerate(f.scan()):
        assert f.data is not None and f.fde is not None
        if i == 0:
            flavor, server_id = f.fde.flavor, int.from_bytes(f.data[start + 5:start + 9], "little")
            if flavor != "mysql":
                break
        elif type_code == C.GTID_LOG_EVENT:
            header_server_id = int.from_bytes(f.data[start + 5:start + 9], "little")
            if header_server_id == server_id:   # logged by this server, not relayed from another
                uuid = parse_mysql_gtid(body_of(bytes(f.data[start:end]), f.fde.has_crc32), type_code).sid
            break
        elif i >= _UUID_SCAN_EVENTS:
            break
    return BinlogWriter(flavor, server_id, uuid)


def same_server(server: ServerInfo, writer: BinlogWriter) -> str | None:
    """Why the target looks like the server that wrote the binlogs, or None. A MySQL server is known
    by its server_uuid when the binlog shows it. Otherwise the server_id decides, together with a
    binlog on the target: the writer logs binlogs, and a restored copy that merely shares the default
    server_id usually does not (it is then warned about, not refused: see `shared_server_id`)."""
    if server.server_uuid and writer.server_uuid:
        if server.server_uuid.lower() == writer.server_uuid.lower():
            return f"its server_uuid {server.server_uuid} is the one in the binlog's GTIDs"
        return None
    if server.server_id == writer.server_id and server.log_bin:
        return f"its server_id {server.server_id} is the one in the binlog's events and it writes a binlog"
    return None


def check_not_same_server(server: ServerInfo, first_file: Path, *, allow: bool) -> str | None:
    """SameServerError when the target is the server that wrote the binlogs (unless `allow`); a
    warning (returned) when it only shares their server_id."""
    writer = binlog_writer(first_file)
    why = same_server(server, writer)
    if why is not None and not allow:
        raise SameServerError(f"the target is the server that wrote these binlogs ({why}): replaying them into it "
                              "would apply its transactions twice; nothing was written. Point the command at the "
                              "restored server, or add --allow-same-server if this is another server that shares "
                              "the server_id")
    if server.server_id == writer.server_id and why is None and not (server.server_uuid and writer.server_uuid):
        return (f"the target has server_id {server.server_id}, the one that wrote these binlogs: as a replica of "
                "that server it would ignore its events; give it its own server_id before attaching it")
    return None


def run_start(cfg: ServerConfig, server: ServerInfo, opts: ReplayOptions, bounds: Bounds, files: list[Path],
              resumed_at: BinlogPosition | None, resumed_run: int | None,
              stopped_at: BinlogPosition | None) -> RunStart:
    """The start line's facts: the target, and the start point the run resolved (and why)."""
    if resumed_at is not None:
        start, origin = str(resumed_at), f"the target's progress records of run {resumed_run}"
    else:
        name = files[bounds.start_file_index].name
        start = f"{name}:{bounds.start_position or 4}"
        if bounds.mariadb is not None and bounds.mariadb.start:
            start += f", GTID state {format_mariadb_gtid_list(bounds.mariadb.start)}"
        if bounds.exclude_gtids is not None:
            start += f", after GTID set {bounds.exclude_gtids}"
        origin = _start_origin(opts)
        if resumed_run is not None:
            origin += f"; run {resumed_run} of the target's progress records goes on"
    return RunStart(target=cfg.where, version=server.version, server_id=server.server_id, log_bin=server.log_bin,
                    target_binlog=opts.target_binlog, start=start, start_from=origin, stop=_stop(opts, stopped_at))


def _start_origin(opts: ReplayOptions) -> str:
    if opts.from_backup is not None:
        return f"--from-backup {opts.from_backup}"
    given = [flag for flag, value in (("--start-position", opts.start_position), ("--start-gtid", opts.start_gtid),
                                      ("--exclude-gtids", opts.exclude_gtids),
                                      ("--start-datetime", opts.start_datetime)) if value is not None]
    return ", ".join(given) if given else "the first file's beginning: no start flag"


def _stop(opts: ReplayOptions, stopped_at: BinlogPosition | None) -> str:
    given = [f"{flag} {value}" for flag, value in (("--stop-position", opts.stop_position),
                                                   ("--stop-datetime", opts.stop_datetime),
                                                   ("--stop-gtid", opts.stop_gtid)) if value is not None]
    if not given:
        return "at the end of the binlogs"
    return ", ".join(given) + (f" (at {stopped_at})" if stopped_at is not None else "")
