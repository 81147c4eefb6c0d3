"""Binlog file names and index files: `<base>.<sequence number>`, in order without gaps.

The one definition every reader of names uses (the file reader, the spool, `.index` files).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from binreplay.errors import BadInputError

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
    """A server's .index file lists its binlogs, relative to the index's folder or absolute.
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
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            p = Path(line)
            out.append(p if p.is_absolute() else (path.parent / p.name if line.startswith("./") else path.parent / p))
    return out


def binlog_arguments(args: Iterable[str]) -> list[Path]:
    """Binlog files as given on a command line, a server's `.index` file standing for the files it lists."""
    files: list[Path] = []
    for a in args:
        p = Path(a)
        files.extend(read_index(p) if p.suffix == ".index" else [p])
    return files
