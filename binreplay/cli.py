"""Command line: `binreplay replay`, `binreplay sandbox`, `binreplay demo`.

Flag names follow the mysql client (target connection) and mysqlbinlog (start/stop).
Every error ends in one line on stderr and a documented exit code (errors.ExitCode).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from binreplay import __version__
from binreplay.errors import BinreplayError, ExitCode
from binreplay.progress import make_reporter
from binreplay.replay import ReplayOptions, default_workers, run_replay
from binreplay.target import TargetConfig


def _read_index(path: Path) -> list[Path]:
    """A server's .index file lists its binlogs, relative to the index's folder or absolute."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            p = Path(line)
            out.append(p if p.is_absolute() else (path.parent / p.name if line.startswith("./") else path.parent / p))
    return out


def hide_password_from_process_list(argv: list[str]) -> None:
    """Rewrite the process title with any password masked, as the mysql client does, so it is
    not readable from `ps` or /proc/<pid>/cmdline while the replay runs."""
    masked, hide_next = [], False
    for arg in argv:
        if hide_next:
            masked.append("xxxxx")
            hide_next = False
        elif arg in ("-p", "--password"):
            masked.append(arg)
            hide_next = True
        elif arg.startswith("--password="):
            masked.append("--password=xxxxx")
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            masked.append("-pxxxxx")
        else:
            masked.append(arg)
    if masked != argv:
        try:
            import setproctitle
        except ImportError:  # pragma: no cover - a declared dependency
            return
        setproctitle.setproctitle(" ".join(masked))


def expand_binlogs(args: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for a in args:
        p = Path(a)
        files.extend(_read_index(p) if p.suffix == ".index" and p.is_file() else [p])
    return files


_SSL_MODES = ["DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"]
_CONNECTION_FIELDS = ("host", "port", "user", "password", "socket", "defaults_file", "ssl_mode", "ssl_ca",
                      "ssl_cert", "ssl_key")


def connection_options(prefix: str = "", what: str = "Target"):
    """The mysql client's connection flags, for the target (no prefix, with -h/-P/-u/-p/-S) or for
    another server (`prefix="reference-"` gives --reference-host ... and parameters reference_host ...).
    `connection_from(kwargs, prefix)` turns them back into a TargetConfig."""
    short = not prefix
    var = prefix.replace("-", "_")

    def opt(name: str, letter: str | None, **kw):
        decls = ([f"-{letter}"] if short and letter else []) + [f"--{prefix}{name}", f"{var}{name.replace('-', '_')}"]
        return click.option(*decls, **kw)

    options = [
        opt("host", "h", help=f"{what} host (default: the local socket)."),
        opt("port", "P", type=int, default=3306, show_default=True, help=f"{what} TCP port."),
        opt("user", "u", help=f"{what} user (default: your login name)."),
        opt("password", "p", help=f"{what} password; prefer MYSQL_PWD or --{prefix}defaults-file (never logged)."),
        opt("socket", "S", help=f"{what} Unix socket."),
        opt("defaults-file", None, type=click.Path(), help="Read [client] connection options from this file."),
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


def connection_from(kwargs: dict, prefix: str = "") -> TargetConfig:
    """Pop one server's connection flags out of a command's kwargs."""
    var = prefix.replace("-", "_")
    return TargetConfig(**{f: kwargs.pop(var + f) for f in _CONNECTION_FIELDS})


def setup_logging(verbose: int, quiet: bool) -> None:
    logging.basicConfig(level=logging.ERROR if quiet else logging.DEBUG if verbose > 1 else
                        logging.INFO if verbose else logging.WARNING,
                        format="binreplay: %(levelname)s: %(message)s", stream=sys.stderr)


class _CleanGroup(click.Group):
    def main(self, *args, **kwargs):  # type: ignore[override]
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("binreplay: aborted", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        except click.ClickException as exc:
            exc.show()
            sys.exit(ExitCode.USAGE)
        except BinreplayError as exc:
            click.echo(f"binreplay: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("binreplay: interrupted; rerun the same command to resume", err=True)
            sys.exit(ExitCode.INTERRUPTED)


@click.group(cls=_CleanGroup, context_settings={"help_option_names": ["--help"]})
@click.version_option(__version__, prog_name="binreplay")
def main() -> None:
    """Replay MySQL/MariaDB binary logs into a restored database, exactly and resumably."""


@main.command("replay")
@click.argument("binlogs", nargs=-1, required=True)
@connection_options()
@click.option("--start-position", type=int, help="Start at this position of the first binlog (a transaction boundary).")
@click.option("--stop-position", type=int, help="Stop before the first transaction ending after this position of the last binlog.")
@click.option("--start-datetime", help="Skip transactions before this local time ('YYYY-MM-DD HH:MM:SS').")
@click.option("--stop-datetime", help="Stop at the first transaction at or after this local time.")
@click.option("--start-gtid", help="MariaDB GTID list the backup already contains (e.g. 0-1-100,1-2-7); replay after it.")
@click.option("--stop-gtid", help="MariaDB GTID list to stop at, inclusive (like START SLAVE UNTIL master_gtid_pos).")
@click.option("--include-gtids", help="MySQL GTID set: apply only these transactions.")
@click.option("--exclude-gtids", help="MySQL GTID set: skip these transactions (e.g. the backup's gtid_executed).")
@click.option("--from-backup", type=click.Path(path_type=Path),
              help="Take the start point from backup metadata (xtrabackup_binlog_info, mysqldump/mariadb-dump "
                   "--master-data output, mydumper metadata).")
@click.option("--preserve-gtids", is_flag=True, help="Commit each transaction on the target with its source GTID.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Parallel apply connections to the target  [default: CPU cores, at most 8].")
@click.option("--dependency", type=click.Choice(["row", "table", "commit-order"]), default="row", show_default=True,
              help="What makes transactions conflict: row keys (primary/unique), whole tables, or the source's "
                   "group commit.")
@click.option("--group-commit/--no-group-commit", default=True, show_default=True,
              help="Let a worker apply several consecutive source transactions in one target commit "
                   "(off with --preserve-gtids).")
@click.option("--preserve-commit-order", is_flag=True,
              help="Commit on the target in source order, so a reader never sees a state the source never had.")
@click.option("--retries", type=click.IntRange(0, 1000), default=10, show_default=True,
              help="Retries of a transaction after a deadlock, lock wait timeout or lost connection.")
@click.option("--group-max-trx", type=click.IntRange(1, 100000), default=100, show_default=True,
              help="Most source transactions in one target commit.")
@click.option("--group-max-bytes", type=click.IntRange(1024, 1 << 30), default=4 << 20, show_default=True,
              help="Most binlog bytes in one target commit.")
@click.option("--dry-run", is_flag=True, help="Read and validate the binlogs and report what would be applied; touch nothing.")
@click.option("--restart", is_flag=True, help="Forget the target's progress records of an earlier run and start over.")
@click.option("--progress-schema", default="binreplay", show_default=True, help="Schema of the progress tables on the target.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "json", "plain", "none"]),
              default="auto", show_default=True, help="Progress display: tqdm bar, JSON lines on stderr, or none.")
@click.option("--no-preflight", is_flag=True, help="Do not read the binlogs once up front to validate them.")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def replay_cmd(binlogs: tuple[str, ...], workers, no_preflight, verbose, quiet, progress_mode, **kw) -> None:
    """Replay BINLOGS (files, or a server's .index file) into the target server."""
    hide_password_from_process_list(sys.argv)
    setup_logging(verbose, quiet)
    target = connection_from(kw)
    opts = ReplayOptions(binlogs=expand_binlogs(binlogs), target=target, workers=workers or default_workers(),
                         preflight=not no_preflight, **kw)
    reporter = make_reporter("none" if quiet and progress_mode == "auto" else progress_mode)
    summary = run_replay(opts, reporter)
    reporter.finish(summary)


@main.command("demo")
@click.option("--transactions", type=click.IntRange(100, 10_000_000), default=5000, show_default=True,
              help="Source transactions to generate after the backup.")
@click.option("--workdir", type=click.Path(path_type=Path), help="Keep the sandboxes here instead of a temp dir.")
@click.option("--keep", is_flag=True, help="Do not delete the temp dir afterwards.")
def demo_cmd(transactions: int, workdir: Path | None, keep: bool) -> None:
    """Run a point-in-time restore on local sandbox servers and compare with mariadb-binlog | mariadb."""
    from binreplay.demo import run_demo

    sys.exit(run_demo(transactions, workdir, keep))


if __name__ == "__main__":  # pragma: no cover
    main()
