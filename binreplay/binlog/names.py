"""Binlog file names and index files: `<base>.<sequence number>`, in order without gaps.

The one definition every reader of names uses (the file reader, the spool, `.index` files).
"""

from __future__ import annotations

import re
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


def read_index(path: Path) -> list[Path]:
    """A server's .index file lists its binlogs, relative to the index's folder or absolute."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            p = Path(line)
            out.append(p if p.is_absolute() else (path.parent / p.name if line.startswith("./") else path.parent / p))
    return out
