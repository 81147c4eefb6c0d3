"""Options several commands share: the mysql client's connection flags (for the target, or a
prefixed second server), mysqlbinlog's start/stop flags, and binlog arguments."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from binreplay.binlog.names import binlog_arguments
from binreplay.errors import UsageError
from binreplay.server.connection import ServerConfig
from binreplay.source.selection import SelectionArgs

F = TypeVar("F", bound=Callable[..., Any])

_SSL_MODES = ["DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"]
_CONNECTION_FIELDS = ("host", "port", "user", "password", "socket", "defaults_file", "defaults_extra_file",
                      "ssl_mode", "ssl_ca", "ssl_cert", "ssl_key")
# `-p` / `--password` without an attached value: ask on the terminal, as the mysql client does. click
# would take the next argument (a binlog file) as the value, so `password_prompt_arguments` rewrites
# such a flag, before click parses the command line, into the flag with this value.
ASK_PASSWORD = "\0ask"


def connection_options(prefix: str = "", what: str = "Target"):
    """The mysql client's connection flags, for the target (no prefix, with -h/-P/-u/-p/-S) or for
    another server (`prefix="reference-"` gives --reference-host ... and parameters reference_host ...).
    `connection_from(kwargs, prefix)` turns them back into a ServerConfig."""
    short = not prefix
    var = prefix.replace("-", "_")

    def opt(name: str, letter: str | None, **kw):
        decls = ([f"-{letter}"] if short and letter else []) + [f"--{prefix}{name}", f"{var}{name.replace('-', '_')}"]
        return click.option(*decls, **kw)

    options = [
        opt("host", "h", help=f"{what} host (default: the local socket)."),
        opt("port", "P", type=int, default=3306, show_default=True, help=f"{what} TCP port."),
        opt("user", "u", help=f"{what} user (default: your login name)."),
        opt("password", "p", metavar="[=PASSWORD]",
            help=f"{what} password, attached as in the mysql client (-pSECRET, --{prefix}password=SECRET); "
                 f"without a value it is asked on the terminal. Prefer "
                 f"{'MYSQL_PWD or ' if short else ''}--{prefix}defaults-file (never logged)."),
        opt("socket", "S", help=f"{what} Unix socket."),
        opt("defaults-file", None, type=click.Path(),
            help="Read [client] connection options from this file only"
                 f"{' (instead of /etc/my.cnf, /etc/mysql/my.cnf and ~/.my.cnf)' if short else ''}."),
        opt("defaults-extra-file", None, type=click.Path(),
            help="Also read [client] connection options from this file"
                 f"{' (after the global files, before ~/.my.cnf)' if short else ''}."),
        opt("ssl-mode", None, type=click.Choice(_SSL_MODES, case_sensitive=False),
            help=f"TLS to the {what.lower()}, as in the mysql client  "
                 "[default: PREFERRED over TCP, DISABLED on a socket]."),
        opt("ssl-ca", None, type=click.Path(), help="CA certificate file (for VERIFY_CA / VERIFY_IDENTITY)."),
        opt("ssl-cert", None, type=click.Path(), help="Client certificate file."),
        opt("ssl-key", None, type=click.Path(), help="Client private key file."),
    ]

    def decorate(fn):
        for o in reversed(options):
            fn = o(fn)
        return fn

    return decorate


def connection_from(kwargs: dict, prefix: str = "") -> ServerConfig:
    """Pop one server's connection flags out of a command's kwargs (asking for the password if
    `-p` came without one). Only the target (no prefix) reads the user's option files and MYSQL_PWD."""
    var = prefix.replace("-", "_")
    fields = {f: kwargs.pop(var + f) for f in _CONNECTION_FIELDS}
    if fields["password"] == ASK_PASSWORD:
        fields["password"] = ask_password(f"Enter {prefix.replace('-', ' ')}password: ")
    return ServerConfig(**fields, user_defaults=not prefix)


def password_prompt_arguments(args: list[str]) -> list[str]:
    """The command line with each password flag given without an attached value (`-p`, `--password`,
    `--source-password`) marked to be asked for, so the argument after it stays an argument."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if arg == "-p":
            arg = f"--password={ASK_PASSWORD}"
        elif arg.startswith("--") and arg.endswith("password") and "=" not in arg:
            arg = f"{arg}={ASK_PASSWORD}"
        out.append(arg)
    return out


def ask_password(prompt: str) -> str:
    """The mysql client's prompt: on the terminal, not echoed; none is a usage error, not a hang."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        raise UsageError("-p without a value asks for the password on a terminal, and there is none: "
                         "attach it (-pPASSWORD, --password=PASSWORD) or use MYSQL_PWD or --defaults-file") from None
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise UsageError("no password entered") from None

# The start/stop flags, shared by `replay` and `plan` (they select transactions the same way).
_SELECTION = [
    click.option("--start-position", type=int,
                 help="Start at this position of the first binlog (a transaction boundary)."),
    click.option("--stop-position", type=int,
                 help="Stop before the first transaction ending after this position of the last binlog."),
    click.option("--start-datetime",
                 help="Start at the first event at or after this time, as mysqlbinlog does ('YYYY-MM-DD HH:MM:SS', "
                      "local time, or with an offset: '...+HH:MM', as binreplay shows times)."),
    click.option("--stop-datetime",
                 help="Stop before the first event at or after this time (local, or with an offset), as mysqlbinlog "
                      "does; not reached: exit 12 (see --allow-unreached-stop)."),
    click.option("--start-gtid",
                 help="MariaDB GTID list the backup already contains (e.g. 0-1-100,1-2-7); replay after it."),
    click.option("--stop-gtid",
                 help="MariaDB GTID list to stop at, inclusive (like START SLAVE UNTIL master_gtid_pos)."),
    click.option("--include-gtids", help="MySQL GTID set: apply only these transactions."),
    click.option("--exclude-gtids", help="MySQL GTID set: skip these transactions (e.g. the backup's gtid_executed)."),
    click.option("--from-backup", type=click.Path(path_type=Path),
                 help="Take the start point from backup metadata (xtrabackup_binlog_info, mysqldump/mariadb-dump "
                      "--master-data output, mydumper metadata)."),
]
SELECTION_FIELDS = ("start_position", "stop_position", "start_datetime", "stop_datetime", "start_gtid", "stop_gtid",
                    "include_gtids", "exclude_gtids", "from_backup")


def selection_options(fn: F) -> F:
    for o in reversed(_SELECTION):
        fn = o(fn)
    return fn


def selection_from(kwargs: dict) -> SelectionArgs:
    """Pop the start/stop flags out of a command's kwargs."""
    return SelectionArgs(**{f: kwargs.pop(f) for f in SELECTION_FIELDS})


def expand_binlogs(args: tuple[str, ...]) -> list[Path]:
    """Binlog files as given, a server's `.index` file standing for the files it lists."""
    return binlog_arguments(args)
