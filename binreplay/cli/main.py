"""Command line: `binreplay replay`, `binreplay sandbox`, `binreplay demo`.

Flag names follow the mysql client (target connection) and mysqlbinlog (start/stop).
Every error ends in one line on stderr and a documented exit code (errors.ExitCode).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import pymysql

from binreplay import __version__
from binreplay.errors import BinreplayError, ExitCode
from binreplay.source.filters import Filters
from binreplay.report.progress import make_reporter
from binreplay.run.coordinator import ReplayOptions, default_workers, run_replay
from binreplay.server.connection import TargetConfig, describe_sql_error


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
        elif arg in ("-p", "--password") or (arg.startswith("--") and arg.endswith("-password")):
            masked.append(arg)
            hide_next = True
        elif arg.startswith("--") and "=" in arg and arg.split("=", 1)[0].endswith("password"):
            masked.append(arg.split("=", 1)[0] + "=xxxxx")
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
        except pymysql.err.MySQLError as exc:  # a server error no layer above turned into a BinreplayError
            click.echo(f"binreplay: error: target: {describe_sql_error(exc)}; what was applied is recorded: rerun "
                       "the same command to resume", err=True)
            sys.exit(ExitCode.TARGET)


@click.group(cls=_CleanGroup, context_settings={"help_option_names": ["--help"]})
@click.version_option(__version__, prog_name="binreplay")
def main() -> None:
    """Replay MySQL/MariaDB binary logs into a restored database, exactly and resumably."""


@main.command("replay")
@click.argument("binlogs", nargs=-1)
@connection_options()
@connection_options("source-", "Source")
@click.option("--source-binlog", metavar="NAME",
              help="With --source-host: the source binlog to start in (--start-position is in it).")
@click.option("--source-server-id", type=click.IntRange(1, (1 << 32) - 1),
              help="server_id this replication client uses on the source  [default: a random large one].")
@click.option("--spool-dir", type=click.Path(path_type=Path),
              help="Where binlogs streamed from the source are kept  [default: ./binreplay-spool/<source>].")
@click.option("--follow", is_flag=True,
              help="With --source-host: keep streaming and applying new transactions like a replica, until "
                   "SIGINT/SIGTERM or a stop condition.")
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
@click.option("--progress-file", type=click.Path(dir_okay=False),
              help="Also append the JSON progress lines (as --progress json prints them) to this file.")
@click.option("--no-preflight", is_flag=True, help="Do not read the binlogs once up front to validate them.")
@click.option("--apply", "apply_mode", type=click.Choice(["binlog", "sql"]), default="binlog", show_default=True,
              help="Row events as exact BINLOG statements, or decoded to plain SQL (other flavour/version, no "
                   "BINLOG privilege, renamed database).")
@click.option("--allow-triggers", is_flag=True, help="With --apply sql: replay although target tables have triggers.")
@click.option("--database", "databases", multiple=True, metavar="PATTERN", help="Apply only these databases (* ? wildcards).")
@click.option("--ignore-database", "ignore_databases", multiple=True, metavar="PATTERN", help="Skip these databases.")
@click.option("--table", "tables", multiple=True, metavar="DB.TABLE", help="Apply only these tables (* ? wildcards).")
@click.option("--ignore-table", "ignore_tables", multiple=True, metavar="DB.TABLE", help="Skip these tables.")
@click.option("--rewrite-db", multiple=True, metavar="FROM->TO", help="Apply database FROM's changes to database TO.")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def replay_cmd(binlogs: tuple[str, ...], workers, no_preflight, verbose, quiet, progress_mode, progress_file,
               **kw) -> None:
    """Replay BINLOGS (files, or a server's .index file) into the target server."""
    hide_password_from_process_list(sys.argv)
    setup_logging(verbose, quiet)
    target = connection_from(kw)
    source = connection_from(kw, "source-")
    live = {k: kw.pop(k) for k in ("source_binlog", "source_server_id", "spool_dir", "follow")}
    kw["filters"] = Filters.from_options(*(kw.pop(k) for k in ("databases", "ignore_databases", "tables",
                                                               "ignore_tables", "rewrite_db")))
    if not binlogs and not (source.host or source.socket or source.defaults_file):
        raise click.UsageError("Missing argument 'BINLOGS...' (or stream them with --source-host)")
    opts = ReplayOptions(binlogs=expand_binlogs(binlogs), target=target, workers=workers or default_workers(),
                         preflight=not no_preflight, **kw)
    reporter = make_reporter("none" if quiet and progress_mode == "auto" else progress_mode, per_worker=verbose > 0,
                             json_file=progress_file)
    if binlogs and not (source.host or source.socket or source.defaults_file):
        summary = run_replay(opts, reporter)
    else:
        from binreplay.source.live.follow import LiveSource, run_live_replay

        summary, _fetched = run_live_replay(opts, LiveSource(source, start_file=live["source_binlog"],
                                                             spool_dir=live["spool_dir"], follow=live["follow"],
                                                             server_id=live["source_server_id"]), reporter)
    reporter.finish(summary)


@main.command("verify")
@connection_options()
@connection_options("reference-", "Reference")
@click.option("--database", "databases", multiple=True,
              help="Compare only this database (repeatable)  [default: every user database on either server].")
@click.option("--chunk-size", type=click.IntRange(1, 10_000_000), default=10_000, show_default=True,
              help="Rows per checksum chunk, walked along the primary key.")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Tables compared at once (one connection to each server per thread).")
@click.option("--progress-schema", default="binreplay", show_default=True,
              help="binreplay's progress schema, left out of the comparison.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Final report as text or as one JSON document on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def verify_cmd(databases, chunk_size, threads, progress_schema, output_format, quiet, **kw) -> None:
    """Compare the target's data with a reference server (the source, or a serial replay), table by table."""
    import json

    from binreplay.errors import DifferenceFound
    from binreplay.commands.verify import VerifyOptions, human_report, json_report, verdict, verify

    hide_password_from_process_list(sys.argv)
    setup_logging(0, quiet)
    reference = connection_from(kw, "reference-")
    opts = VerifyOptions(target=connection_from(kw), reference=reference, databases=tuple(databases),
                         chunk_size=chunk_size, threads=threads, progress_schema=progress_schema,
                         progress=not quiet)
    report = verify(opts)
    if output_format == "json":
        click.echo(json.dumps(json_report(report), indent=2))
    elif report.differences:
        click.echo(human_report(report))
    if report.differences:
        raise DifferenceFound(verdict(report))
    if output_format == "text":
        click.echo(f"binreplay: {verdict(report)}")


@main.command("status")
@click.argument("binlogs", nargs=-1)
@connection_options()
@click.option("--progress-schema", default="binreplay", show_default=True, help="Schema of the progress tables.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Report as text or as one JSON document.")
def status_cmd(binlogs: tuple[str, ...], progress_schema, output_format, **kw) -> None:
    """Where the last replay into the target stands, and how to resume it.

    BINLOGS (optional: files or a server's .index) let it name the GTID and source time at the
    low-water mark and put their paths in the resume command."""
    import json

    from binreplay.commands.status import human_status, json_status, read_status

    hide_password_from_process_list(sys.argv)
    st = read_status(connection_from(kw), progress_schema, expand_binlogs(binlogs))
    click.echo(json.dumps(json_status(st), indent=2, default=str) if output_format == "json" else human_status(st))


@main.command("fetch")
@connection_options("source-", "Source")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Directory for the binlog files (a rerun resumes what is there).")
@click.option("--start-file", metavar="NAME", help="First binlog to fetch  [default: the source's oldest].")
@click.option("--start-gtid", help="MariaDB: start with the binlog holding this GTID position.")
@click.option("--stop-file", metavar="NAME", help="Stop once this binlog is complete.")
@click.option("--stop-never", is_flag=True, help="Keep waiting for new events like a replica (until SIGINT/SIGTERM).")
@click.option("--source-server-id", type=click.IntRange(1, (1 << 32) - 1),
              help="server_id this replication client uses on the source  [default: a random large one].")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def fetch_cmd(out, start_file, start_gtid, stop_file, stop_never, source_server_id, verbose, quiet, **kw) -> None:
    """Download binlogs from a server into files identical to its own (like mysqlbinlog --raw), resumably."""
    from binreplay.source.live.fetch import FetchOptions, check_fetch_options, fetch_until_signalled, random_server_id

    hide_password_from_process_list(sys.argv)
    setup_logging(verbose, quiet)
    opts = FetchOptions(source=connection_from(kw, "source-"), out=out, start_file=start_file,
                        start_gtid=start_gtid, stop_file=stop_file, follow=stop_never,
                        server_id=source_server_id or random_server_id())
    check_fetch_options(opts)
    stats = fetch_until_signalled(opts)
    if not quiet:
        end = f"{stats.position[0]}:{stats.position[1]}" if stats.position else "nothing new"
        click.echo(f"binreplay: fetched {stats.events} events ({stats.bytes} bytes) into {out}; "
                   f"up to {end}; {stats.reconnects} reconnect(s)"
                   f"{f'; {stats.stop_reason}' if stats.stop_reason else ''}", err=True)


@main.command("plan")
@click.argument("binlogs", nargs=-1, required=True)
@click.option("--top", type=click.IntRange(1, 100_000), default=10, show_default=True,
              help="Databases, tables, DDL statements and transactions listed in the text report.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Report as aligned text or as one JSON document (every table, every DDL).")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def plan_cmd(binlogs: tuple[str, ...], top: int, output_format: str, verbose: int, quiet: bool, **kw) -> None:
    """Survey BINLOGS without touching any server: volume per database and table, DDL and barriers,
    the largest transactions, the parallelism each --dependency mode would find, and the
    --workers/--dependency to use. Takes replay's start/stop flags."""
    from binreplay.commands.plan.survey import make_plan
    from binreplay.commands.plan.report import to_json, to_text

    setup_logging(verbose, quiet)
    plan = make_plan(ReplayOptions(binlogs=expand_binlogs(binlogs), **kw), top)
    click.echo(to_json(plan) if output_format == "json" else to_text(plan, top), nl=False)


# The plan selects transactions exactly as replay does: the same flags, shared rather than copied.
plan_cmd.params[1:1] = [p for p in replay_cmd.params if p.name in (
    "start_position", "stop_position", "start_datetime", "stop_datetime", "start_gtid", "stop_gtid",
    "include_gtids", "exclude_gtids", "from_backup")]


from binreplay.cli.sandbox import sandbox_group  # noqa: E402  (the group lives in its own module)

main.add_command(sandbox_group)


@main.command("demo")
@click.option("--transactions", type=click.IntRange(100, 10_000_000), default=5000, show_default=True,
              help="Source transactions to generate after the backup.")
@click.option("--workdir", type=click.Path(path_type=Path), help="Keep the sandboxes here instead of a temp dir.")
@click.option("--keep", is_flag=True, help="Do not delete the temp dir afterwards.")
def demo_cmd(transactions: int, workdir: Path | None, keep: bool) -> None:
    """Run a point-in-time restore on local sandbox servers and compare with mariadb-binlog | mariadb."""
    from binreplay.devtools.demo import run_demo

    sys.exit(run_demo(transactions, workdir, keep))


if __name__ == "__main__":  # pragma: no cover
    main()
