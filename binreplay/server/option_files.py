"""The mysql client's option files (my.cnf): which ones it reads, and their format.

Which files: with `--defaults-file`, that file only; otherwise the global files, then
`--defaults-extra-file`, then the user's `~/.my.cnf`, each later file overriding an earlier
one. Format: `[group]` headers, `name = value` lines (`-` and `_` alike in names), values
optionally quoted with the client's escapes, `#` and `;` comments, and `!include FILE` /
`!includedir DIR` (every `*.cnf` of the directory, in name order).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from binreplay.errors import UsageError

# The groups the mysql/mariadb clients read connection options from.
CLIENT_GROUPS = ("client", "mysql", "client-server", "client-mariadb", "mariadb-client")
GLOBAL_FILES = (Path("/etc/my.cnf"), Path("/etc/mysql/my.cnf"))
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "r": "\r", "s": " ", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class OptionFile:
    path: Path
    flag: str | None       # the flag that named it (it must exist), or None for a file read if present


def option_files(defaults_file: str | None, extra_file: str | None, *, user_files: bool) -> list[OptionFile]:
    """The files to read, in order. `user_files`: the global files and ~/.my.cnf too (the target's
    connection; a second server reads only the files its own flags name)."""
    if defaults_file:
        files = [OptionFile(Path(defaults_file), "--defaults-file")]
    else:
        files = [OptionFile(p, None) for p in GLOBAL_FILES] if user_files else []
    if extra_file:
        files.append(OptionFile(Path(extra_file), "--defaults-extra-file"))
    if user_files and not defaults_file:
        files.append(OptionFile(Path.home() / ".my.cnf", None))
    return files


def client_options(files: list[OptionFile]) -> dict[str, str | None]:
    """The client groups' options of `files` (names with `_`), later values overriding earlier ones."""
    values: dict[str, str | None] = {}
    for f in files:
        if not f.path.is_file():
            if f.flag is not None:
                raise UsageError(f"{f.flag} not found: {f.path}")
            continue
        _read(f.path, values, frozenset(), f.flag or str(f.path))
    return values


def _read(path: Path, values: dict[str, str | None], including: frozenset[Path], named_by: str) -> None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"{named_by}: cannot read {path}: {exc.strerror}") from None
    including = including | {path.resolve()}
    group: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        where = f"{named_by}: {path}:{number}"
        if line.startswith("!include"):
            directive, _, argument = line.partition(" ")
            target = Path(argument.strip()).expanduser()
            target = target if target.is_absolute() else path.parent / target
            if directive == "!include":
                included = [target]
            elif directive == "!includedir":
                included = sorted(target.glob("*.cnf")) if target.is_dir() else []
            else:
                raise UsageError(f"{where}: unknown directive {directive}")
            for f in included:
                if f.resolve() in including:
                    raise UsageError(f"{where}: {f} includes itself")
                if not f.is_file():
                    raise UsageError(f"{where}: included file not found: {f}")
                _read(f, values, including, named_by)
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise UsageError(f"{where}: a group header must end with ']'")
            group = line[1:-1].strip().lower()
            continue
        if group is None:
            raise UsageError(f"{where}: an option before any [group]")
        name, eq, value = line.partition("=")
        if group in CLIENT_GROUPS:
            values[name.strip().replace("-", "_").lower()] = _value(value, where) if eq else None


def _value(text: str, where: str) -> str:
    """An option's value: quoted (with the client's escapes) or bare, up to a `#` comment."""
    text = text.strip()
    if text[:1] in ("'", '"'):
        quote, out, i = text[0], [], 1
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
                continue
            if ch == quote:
                return "".join(out)
            out.append(ch)
            i += 1
        raise UsageError(f"{where}: unterminated quoted value")
    return text.split("#", 1)[0].rstrip()
