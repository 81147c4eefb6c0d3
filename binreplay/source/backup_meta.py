"""Start coordinates read from a backup's metadata (``--from-backup``).

A physical or logical backup records where in the binlogs its data ends:

* Percona XtraBackup: ``xtrabackup_binlog_info`` -- ``file<TAB>pos[<TAB>gtid]``,
  the GTID being MySQL's gtid_executed (which spans lines when it names several
  UUIDs) or, for MariaDB servers, gtid_current_pos.
* mariabackup / mariadb-backup: the same layout in ``xtrabackup_binlog_info``,
  renamed ``mariadb_backup_binlog_info`` in newer releases, GTID = gtid_current_pos.
* mysqldump / mariadb-dump with --master-data / --source-data (1 = SQL, 2 =
  commented SQL): a ``CHANGE MASTER TO MASTER_LOG_FILE=..`` or (MySQL 8.0.26+)
  ``CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE=..`` statement near the top;
  MySQL's GTID state as ``SET @@GLOBAL.GTID_PURGED=..`` near the top; MariaDB's
  as ``SET GLOBAL gtid_slave_pos=..`` either near the top (older releases) or
  deferred to the very end of the dump (current releases).
* mydumper ``metadata``: up to 0.13 a text block ``SHOW MASTER STATUS:`` with
  ``Log:``/``Pos:``/``GTID:`` lines; 0.14-0.16 an INI ``[master]`` section with
  ``File``/``Position``/``Executed_Gtid_Set``; 0.17+ a ``[source]`` section with
  those keys, or ``SOURCE_LOG_FILE``/``SOURCE_LOG_POS``/``executed_gtid_set``,
  written as ``# key = "value"`` comments unless --source-data was given.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePath
from typing import BinaryIO, TypeVar, cast

from binreplay.errors import BadInputError, UsageError
from binreplay.source.gtid import MysqlGtidSet, format_mariadb_gtid_list, parse_mariadb_gtid_list
from binreplay.source.mydumper_meta import mydumper_fields

BINLOG_INFO_NAMES = ("mariadb_backup_binlog_info", "xtrabackup_binlog_info")
MYDUMPER_METADATA = "metadata"
# Only the head of a dump is read: the coordinates precede the first table.
DUMP_HEAD_MAX_BYTES = 16 << 20
# MariaDB's deferred gtid_slave_pos sits just before the dump's footer.
DUMP_TAIL_BYTES = 1 << 20


@dataclass(frozen=True)
class BackupCoordinates:
    source_file: Path                   # the metadata file read
    binlog_file: str | None             # basename, e.g. "mysql-bin.000003"
    position: int | None
    mariadb_gtid: str | None            # e.g. "0-1-100,1-2-5"
    mysql_gtid_executed: str | None     # normalised MySQL GTID set text
    tool: str                           # xtrabackup, mariabackup, mysqldump, mariadb-dump, mydumper


def read_backup_coordinates(path: Path) -> BackupCoordinates:
    """Read the binlog coordinates from a backup metadata file or a backup directory. What cannot be
    read (missing, unreadable, not a regular file, a corrupt compressed dump) is bad input."""
    path = Path(path)
    try:
        return _read_coordinates(path)
    except (OSError, EOFError, ValueError, zlib.error) as exc:   # gzip.BadGzipFile is an OSError
        raise BadInputError(f"{path}: cannot read the backup metadata: {getattr(exc, 'strerror', None) or exc}") \
            from None
    except Exception as exc:
        import zstandard  # a declared dependency (a zstd-compressed dump)

        if not isinstance(exc, zstandard.ZstdError):
            raise
        raise BadInputError(f"{path}: cannot read the backup metadata: corrupt zstd data ({exc})") from None


def _read_coordinates(path: Path) -> BackupCoordinates:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file or directory") from None
    if stat.S_ISDIR(st.st_mode):
        path = _metadata_file_in(path)
        st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):   # a FIFO would block in open()
        raise BadInputError(f"{path}: not a backup metadata file (not a regular file)")
    name = path.name
    if name in BINLOG_INFO_NAMES:
        return _read_binlog_info(path)
    if name == MYDUMPER_METADATA:
        return _read_mydumper_metadata(path)
    return _read_by_content(path)


@dataclass(frozen=True)
class BackupStart:
    """Where a replay onto this backup starts: a binlog file and position when the backup recorded
    them, else its GTID state (MariaDB position, or MySQL executed set)."""

    binlog_file: str | None = None
    position: int | None = None
    mariadb_gtid: str | None = None
    mysql_gtid_executed: str | None = None


def backup_start(path: Path) -> BackupStart:
    """`--from-backup`: the start point a backup's metadata gives (file+position first). Read once per
    process and path (a replay resolves it for its bounds and for its identity; a dump may be large)."""
    return _backup_start(os.path.realpath(path), str(path))


def backup_identity(path: Path) -> dict:
    """What identifies a replay from this backup: its coordinates, not how its path was written."""
    return {k: v for k, v in asdict(backup_start(path)).items() if v is not None}


@functools.lru_cache(maxsize=8)
def _backup_start(real_path: str, given: str) -> BackupStart:
    path = Path(given)
    coords = read_backup_coordinates(path)
    if coords.binlog_file and coords.position:
        return BackupStart(binlog_file=coords.binlog_file, position=coords.position)
    if coords.mariadb_gtid:
        return BackupStart(mariadb_gtid=coords.mariadb_gtid)
    if coords.mysql_gtid_executed:
        return BackupStart(mysql_gtid_executed=coords.mysql_gtid_executed)
    raise BadInputError(f"{path}: no usable start coordinates in it")


def _not_found(path: Path) -> BadInputError:
    return BadInputError(
        f"{path}: no binlog coordinates found (expected xtrabackup_binlog_info,"
        " a mysqldump with --master-data/--source-data, or mydumper metadata)"
    )


def _metadata_file_in(directory: Path) -> Path:
    for name in (*BINLOG_INFO_NAMES, MYDUMPER_METADATA):
        if (directory / name).is_file():
            return directory / name
    # Compressed or encrypted backups keep the file as e.g. xtrabackup_binlog_info.zst.
    for name in BINLOG_INFO_NAMES:
        packed = sorted(directory.glob(name + ".*"))
        if packed:
            raise BadInputError(
                f"{packed[0]}: the backup is still compressed or encrypted;"
                " run xtrabackup/mariabackup --decompress (or --decrypt) first"
            )
    raise _not_found(directory)


def _gtid_fields(path: Path, text: str | None) -> tuple[str | None, str | None]:
    """(mariadb_gtid, mysql_gtid_executed) from a GTID value of either flavour, told apart by shape."""
    value = "".join((text or "").split())
    if not value or value == "(null)":  # mydumper printed a NULL as "(null)"
        return None, None
    try:
        if ":" in value:
            gtid_set = MysqlGtidSet(value)
            return None, (str(gtid_set) or None)
        return format_mariadb_gtid_list(parse_mariadb_gtid_list(value)), None
    except UsageError as exc:
        raise BadInputError(f"{path}: {exc}") from None


def _coordinates(
    path: Path, tool: str, binlog_file: str | None, position: str | int | None, gtid: str | None
) -> BackupCoordinates:
    binlog_file = PurePath(binlog_file.strip()).name if binlog_file and binlog_file.strip() else None
    pos_text = str(position).strip() if position is not None else ""
    if pos_text and not pos_text.isdigit():
        raise BadInputError(f"{path}: binlog position '{pos_text}' is not a number")
    pos = int(pos_text) if pos_text else None
    if (binlog_file is None) != (pos is None):
        raise BadInputError(f"{path}: a binlog file name and a position must be given together")
    mariadb_gtid, mysql_gtid = _gtid_fields(path, gtid)
    if binlog_file is None and mariadb_gtid is None and mysql_gtid is None:
        raise _not_found(path)
    return BackupCoordinates(path, binlog_file, pos, mariadb_gtid, mysql_gtid, tool)


def _read_by_content(path: Path) -> BackupCoordinates:
    with _open_text(path) as f:
        head = f.read(64 << 10)
    if re.search(r"^SHOW MASTER STATUS:|^\s*\[(?:source|master)\]\s*$", head, re.MULTILINE | re.IGNORECASE):
        return _read_mydumper_metadata(path)
    if re.match(r"\S+[ \t]+\d+(?:[ \t]|\r?\n|$)", head) and "CHANGE " not in head.upper():
        return _read_binlog_info(path)
    return _read_dump(path)


# ---------------------------------------------------------------- file access


def _open_binary(path: Path) -> BinaryIO:
    """Open plain, gzip or zstd files alike, recognised by their magic bytes."""
    raw = path.open("rb")
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw))
    if magic == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    return raw


def _open_text(path: Path) -> io.TextIOWrapper:
    # Dumps may hold data in any character set; metadata is ASCII, so never fail on decoding.
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="replace", newline=None)


def _is_compressed(path: Path) -> bool:
    with path.open("rb") as f:
        magic = f.read(4)
    return magic[:2] == b"\x1f\x8b" or magic == b"\x28\xb5\x2f\xfd"


# ---------------------------------------------------------------- xtrabackup / mariabackup


def _read_binlog_info(path: Path) -> BackupCoordinates:
    with _open_text(path) as f:
        text = f.read()
    if not text.strip():
        raise BadInputError(f"{path}: the file is empty (was the binary log enabled on the backed-up server?)")
    fields = text.rstrip("\r\n").split("\t", 2) if "\t" in text else text.split(None, 2)
    if len(fields) < 2:
        raise BadInputError(f"{path}: expected 'binlog-file<TAB>position[<TAB>gtid]', got '{text.strip()[:80]}'")
    gtid = fields[2] if len(fields) > 2 else None
    binlog_file, position = fields[0], fields[1]
    if not binlog_file.strip() and position.strip() == "0":
        position = ""  # XtraBackup 8.0 writes "\t0\t<gtid>" when only GTIDs are known
    coords = _coordinates(path, "xtrabackup", binlog_file, position, gtid)
    return replace(coords, tool=_physical_backup_tool(path, coords))


def _physical_backup_tool(path: Path, coords: BackupCoordinates) -> str:
    """mariabackup or xtrabackup: from the file name, the tool_name in the info file beside it, or the GTID shape."""
    if path.name == "mariadb_backup_binlog_info":
        return "mariabackup"
    for info_name in ("mariadb_backup_info", "xtrabackup_info"):
        info = path.with_name(info_name)
        if info.is_file():
            match = re.search(r"^tool_name\s*=\s*(\S+)", info.read_text(errors="replace"), re.MULTILINE)
            if match:
                return "mariabackup" if "maria" in match.group(1).lower() else "xtrabackup"
    return "mariabackup" if coords.mariadb_gtid else "xtrabackup"


# ---------------------------------------------------------------- mydumper


def _read_mydumper_metadata(path: Path) -> BackupCoordinates:
    with _open_text(path) as f:
        lines = f.read().splitlines()
    fields = mydumper_fields(lines)
    if fields is None:
        raise _not_found(path)
    binlog_file, position, gtid = fields
    return _coordinates(path, "mydumper", binlog_file, position, gtid)


# ---------------------------------------------------------------- mysqldump / mariadb-dump

# The first statement that touches data: the coordinates were all written before it.
_DUMP_BODY = re.compile(r"^\s*(?:/\*!\d+\s*)?(?:CREATE|INSERT|REPLACE|USE|DROP|LOCK\s+TABLES)\b", re.IGNORECASE)
_CHANGE = re.compile(
    r"^[ \t]*(?:--[ \t]*)?CHANGE[ \t]+(?:MASTER|REPLICATION[ \t]+SOURCE)\b(?:[ \t]+'[^']*')?[ \t]+TO\b(.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_LOG_FILE = re.compile(r"\b(?:MASTER|SOURCE)_LOG_FILE\s*=\s*'([^']*)'", re.IGNORECASE)
_LOG_POS = re.compile(r"\b(?:MASTER|SOURCE)_LOG_POS\s*=\s*(\d+)", re.IGNORECASE)
# mysqldump: SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '...'; 5.x: ='...'; COMMENTED: /* SET ..='+...';*/
_GTID_PURGED = re.compile(
    r"^[ \t]*(?:/\*[ \t]*)?SET[ \t]+@@GLOBAL\.GTID_PURGED\s*=\s*(?:/\*!\d+\s*'\+'\s*\*/\s*)?'\+?([^']*)'",
    re.IGNORECASE | re.MULTILINE,
)
_GTID_SLAVE_POS = re.compile(
    r"^[ \t]*(?:--[ \t]*)?SET[ \t]+GLOBAL[ \t]+gtid_slave_pos\s*=\s*'([^']*)'", re.IGNORECASE | re.MULTILINE
)
# What only MariaDB's client writes: its header (10.x still called itself "MySQL dump ..
# Distrib 10.x-MariaDB"), the sandbox-mode line, /*M! comments, MASTER_USE_GTID.
_MARIADB_DUMP = re.compile(r"^-- MariaDB dump|^-- MySQL dump.*MariaDB|/\*M!|MASTER_USE_GTID", re.MULTILINE)


def _change_positions(head: str) -> set[tuple[str, str]]:
    """(file, pos) of every CHANGE MASTER/REPLICATION SOURCE that names both (MASTER_USE_GTID ones don't)."""
    positions = set()
    for statement in _CHANGE.finditer(head):
        log_file, log_pos = _LOG_FILE.search(statement.group(1)), _LOG_POS.search(statement.group(1))
        if log_file and log_pos:
            positions.add((log_file.group(1), log_pos.group(1)))
    return positions


def _read_dump(path: Path) -> BackupCoordinates:
    head = _dump_head(path)
    positions = _change_positions(head)
    mysql_gtids = set(_GTID_PURGED.findall(head))
    mariadb_gtids = set(_GTID_SLAVE_POS.findall(head))
    is_mariadb = bool(_MARIADB_DUMP.search(head))
    if is_mariadb and not mariadb_gtids and positions:
        mariadb_gtids = set(_GTID_SLAVE_POS.findall(_dump_tail(path)))
    if not positions and not mysql_gtids and not mariadb_gtids:
        raise _not_found(path)
    binlog_file, position = _only(path, "binlog positions", positions) or (None, None)
    gtid = _only(path, "GTID_PURGED values", mysql_gtids) or _only(path, "gtid_slave_pos values", mariadb_gtids)
    return _coordinates(path, "mariadb-dump" if is_mariadb else "mysqldump", binlog_file, position, gtid)


_T = TypeVar("_T")


def _only(path: Path, what: str, values: set[_T]) -> _T | None:
    """The single distinct value, None if there is none; several mean an ambiguous dump."""
    if len(values) > 1:
        shown = ", ".join(sorted(":".join(v) if isinstance(v, tuple) else str(v) for v in values))
        raise BadInputError(
            f"{path}: the dump holds several {what} ({shown}), e.g. from both --master-data and"
            " --dump-slave or several replication channels; give the start position explicitly"
        )
    return next(iter(values), None)


def _dump_lines(path: Path) -> Iterator[str]:
    with _open_text(path) as f:
        yield from iter(lambda: f.readline(DUMP_HEAD_MAX_BYTES), "")


def _dump_head(path: Path) -> str:
    """The dump up to its first data/DDL statement (or DUMP_HEAD_MAX_BYTES)."""
    kept: list[str] = []
    size = 0
    for line in _dump_lines(path):
        if _DUMP_BODY.match(line) or size > DUMP_HEAD_MAX_BYTES:
            break
        kept.append(line)
        size += len(line)
    return "".join(kept)


def _dump_tail(path: Path) -> str:
    """The last DUMP_TAIL_BYTES of the dump; a compressed one has to be decompressed through."""
    if not _is_compressed(path):
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - DUMP_TAIL_BYTES))
            return f.read().decode("utf-8", "replace")
    tail = b""
    with _open_binary(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            tail = (tail + chunk)[-DUMP_TAIL_BYTES:]
    return tail.decode("utf-8", "replace")
