"""The binlog coordinates in a mydumper `metadata` file: the `SHOW MASTER STATUS:` text block of
mydumper <= 0.13, or the `[source]` / `[master]` ini section of later versions (source/backup_meta.py
reads the file and turns the fields into coordinates)."""

from __future__ import annotations

import re


def mydumper_fields(lines: list[str]) -> tuple[str | None, str | None, str | None] | None:
    """(binlog file, position, GTID set) of a mydumper metadata file's lines; None if it has none."""
    return _mydumper_text_block(lines) if _has_text_block(lines) else _mydumper_ini_section(lines)


def _has_text_block(lines: list[str]) -> bool:
    return any(line.strip() == "SHOW MASTER STATUS:" for line in lines)


def _mydumper_text_block(lines: list[str]) -> tuple[str | None, str | None, str | None]:
    """The ``SHOW MASTER STATUS:`` block of mydumper <= 0.13; it ends at a blank line."""
    start = next(i for i, line in enumerate(lines) if line.strip() == "SHOW MASTER STATUS:")
    values: dict[str, str] = {}
    key = None
    for line in lines[start + 1:]:
        if not line.strip():
            break
        match = re.match(r"\s*(Log|Pos|GTID):(.*)$", line)
        if match:
            key = match.group(1)
            values[key] = match.group(2).strip()
        elif key == "GTID":  # MySQL prints gtid_executed with a newline after each comma
            values[key] += line.strip()
    return values.get("Log"), values.get("Pos"), values.get("GTID")


_INI_SECTION = re.compile(r"^\s*\[(.+)\]\s*$")
_INI_KEY = re.compile(r"^\s*(#?)\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$")
_MYDUMPER_KEYS = {
    "file": "file", "source_log_file": "file",
    "position": "pos", "source_log_pos": "pos",
    "executed_gtid_set": "gtid",
}


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _mydumper_ini_section(lines: list[str]) -> tuple[str | None, str | None, str | None] | None:
    """The ``[source]`` (0.17+) or ``[master]`` (0.14-0.16) section; ``[replication*]`` describe the source's source."""
    live: dict[str, str] = {}
    commented: dict[str, str] = {}
    in_section = found = False
    gtid_values: dict[str, str] | None = None  # where the GTID set being read went
    for line in lines:
        section = _INI_SECTION.match(line)
        if section:
            in_section = section.group(1).strip().lower() in ("source", "master")
            found = found or in_section
            gtid_values = None
            continue
        if not in_section:
            continue
        match = _INI_KEY.match(line)
        if match:
            key = _MYDUMPER_KEYS.get(match.group(2).lower())
            values = commented if match.group(1) else live
            if key:
                values.setdefault(key, _unquote(match.group(3)))
            gtid_values = values if key == "gtid" else None
        elif gtid_values is not None and line.strip() and not line.lstrip().startswith("#"):
            # 0.14 wrote gtid_executed with its newlines: continuation lines carry more UUIDs.
            gtid_values["gtid"] += line.strip()
    if not found:
        return None
    # Commented keys (mydumper >= 0.21 without --source-data) hold the same values.
    merged = {**commented, **live}
    return merged.get("file"), merged.get("pos"), merged.get("gtid")
