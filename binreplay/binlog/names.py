"""Binlog file names and index files: `<base>.<sequence number>`, in order without gaps.

The one definition every reader of names uses (the file reader, the spool, `.index` files).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from binreplay.errors import BadInputError

log = logging.getLogger(__name__)

# The base may itself contain dots ("mysql-bin.prod.000007"); it cannot be empty.
_NAME = re.compile(r"^(.+)\.(\d+)$")


def sequence_number(name: str) -> tuple[str, int] | None:
    """('mysql-bin', 7) for 'mysql-bin.000007'; None for a name without a sequence number."""
    m = _NAME.match(name)
    return (m.group(1), int(m.group(2))) if m else None


def is_binlog_name(name: str) -> bool:
    return _NAME.match(name) is not None


def next_binlog_name(name: str) -> str:
    m = _NAME.match(name)
    if m is None:
        raise BadInputError(f"binlog name {name!r} has no sequence number")
    return f"{m.group(1)}.{int(m.group(2)) + 1:0{len(m.group(2))}d}"


def binlog_sort_key(name: str) -> tuple[str, int]:
    return sequence_number(name) or (name, -1)


def check_file_sequence(paths: list[Path]) -> None:
    """Files must be given in order with no gap (base.000007 then base.000008 ...)."""
    prev = None
    for p in paths:
        cur = sequence_number(p.name)
        if prev and cur and prev[0] == cur[0] and cur[1] != prev[1] + 1:
            what = "out of order" if cur[1] <= prev[1] else "a gap in the sequence"
            raise BadInputError(f"binlog files are {what}: {prev[0]}.{prev[1]:06d} is followed by {p.name}")
        prev = cur or prev


MAX_INDEX_BYTES = 16 << 20   # an index lists file names: a few KB; a bigger file is not one


def read_index(path: Path) -> list[Path]:
    """A server's .index file lists its binlogs, relative to the index's folder or absolute (Debian's).
    What cannot be read as one (missing, unreadable, not a regular file, not text) is bad input."""
    from binreplay.binlog.file import open_regular  # file.py reads binlogs; it never needs names.py

    what = "binlog index file"
    with open_regular(path, what) as f:
        try:
            raw = f.read(MAX_INDEX_BYTES + 1)
        except OSError as exc:
            raise BadInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_INDEX_BYTES:
        raise BadInputError(f"not a {what} (more than {MAX_INDEX_BYTES >> 20} MiB): {path}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"not a {what} (not UTF-8 text): {path}") from None
    if "\0" in text:
        raise BadInputError(f"not a {what} (it holds NUL bytes): {path}")
    return [index_entry(path, line.strip()) for line in text.splitlines() if line.strip()]


def index_entry(index: Path, entry: str) -> Path:
    """The file an index line means. A relative entry is in the index's folder. An absolute one is where
    the server wrote it, but an index copied beside copies of the binlogs (the runbook's step) means the
    copies: the server's own files may have grown since, or been purged. So a file of that name beside
    the index wins; the listed path is read only when there is none (said, since it is another folder)."""
    listed = Path(entry)
    if not listed.is_absolute():
        return index.parent / listed.name if entry.startswith("./") else index.parent / listed
    beside = index.parent / listed.name
    if beside.exists() or not listed.exists():
        return beside    # when neither exists, reading it says the copy is missing
    log.warning("%s lists %s, which is not beside it: reading the server's file there", index, listed)
    return listed


def files_used(paths: list[Path]) -> str:
    """Which binlog files a command reads, for its output: the names, first to last, per folder."""
    groups: list[tuple[Path, list[str]]] = []
    for p in paths:
        folder = p.absolute().parent
        if groups and groups[-1][0] == folder:
            groups[-1][1].append(p.name)
        else:
            groups.append((folder, [p.name]))
    return "; ".join(f"{names[0]}{f' .. {names[-1]}' if len(names) > 1 else ''} ({len(names)} file"
                     f"{'s' if len(names) > 1 else ''}) in {folder}" for folder, names in groups)


def binlog_arguments(args: Iterable[str]) -> list[Path]:
    """Binlog files as given on a command line, a server's `.index` file standing for the files it lists."""
    files: list[Path] = []
    for a in args:
        p = Path(a)
        files.extend(read_index(p) if p.suffix == ".index" else [p])
    return files
