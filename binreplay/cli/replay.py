"""`binreplay replay`: binlog files (or a live source) into the target."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import click

from binreplay.cli.app import hide_password_from_process_list, main, setup_logging
from binreplay.cli.options import connection_from, connection_options, expand_binlogs, selection_options
from binreplay.report.progress import make_reporter
from binreplay.run import ReplayOptions, default_workers, run_replay
from binreplay.schedule.limits import BATCH
from binreplay.server.reconnect import DEFAULT_RECONNECT_TIMEOUT_S
from binreplay.source.filters import Filters
from binreplay.source.selection import UnreachedStop


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
@selection_options
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
@click.option("--reconnect-timeout", type=click.FloatRange(0, 86400), default=DEFAULT_RECONNECT_TIMEOUT_S,
              show_default=True, metavar="SECONDS",
              help="How long to wait for a target that went away (restart, failover) before giving up (exit 4); "
                   "the run then goes on from the target's progress records.")
@click.option("--group-max-trx", type=click.IntRange(1, 100000), default=BATCH.max_transactions, show_default=True,
              help="Most source transactions in one target commit.")
@click.option("--group-max-bytes", type=click.IntRange(1024, 1 << 30), default=BATCH.max_bytes, show_default=True,
              help="Most binlog bytes in one target commit.")
@click.option("--dry-run", is_flag=True,
              help="Read and validate the binlogs and report what would be applied; touch nothing.")
@click.option("--check-target", is_flag=True,
              help="Validate the binlogs and check the target without writing to it: connection, every missing "
                   "privilege, the tables the selection writes, and whether its progress records fit the start "
                   "point. One line per problem; exit 0 when there is none.")
@click.option("--target-binlog", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Whether replayed transactions go to the target's own binlog too (when it has one); off is "
                   "`mysqlbinlog -D` (needs BINLOG ADMIN or SUPER).")
@click.option("--allow-same-server", is_flag=True,
              help="Replay although the target has the server_id (MySQL: server_uuid) of the server that wrote the "
                   "binlogs (refused by default: exit 13).")
@click.option("--restart", is_flag=True,
              help="Abandon the target's earlier run and start over from this command's start point. It undoes "
                   "nothing: refused when the earlier run applied transactions past that start, unless "
                   "--target-restored.")
@click.option("--target-restored", is_flag=True,
              help="With --restart: the target was restored from the backup again since the earlier run, so what "
                   "that run applied is gone and replaying from the start point applies nothing twice.")
@click.option("--progress-schema", default="binreplay", show_default=True,
              help="Schema of the progress tables on the target.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "json", "plain", "none"]),
              default="auto", show_default=True, help="Progress display: tqdm bar, JSON lines on stderr, or none.")
@click.option("--progress-file", type=click.Path(dir_okay=False),
              help="Also append the JSON progress lines (as --progress json prints them) to this file.")
@click.option("--no-preflight", is_flag=True, help="Do not read the binlogs once up front to validate them.")
@click.option("--no-early-apply", "early_apply", flag_value=False, default=True,
              help="Touch the target only once the whole input is validated (by default a fresh run applies "
                   "while it is validated, committing nothing until then).")
@click.option("--apply", "apply_mode", type=click.Choice(["binlog", "sql"]), default="binlog", show_default=True,
              help="Row events as exact BINLOG statements, or decoded to plain SQL (other flavour/version, no "
                   "BINLOG privilege, renamed database).")
@click.option("--allow-triggers", is_flag=True, help="With --apply sql: replay although target tables have triggers.")
@click.option("--allow-unreached-stop", is_flag=True,
              help="Apply everything although no event of the binlogs reaches --stop-datetime (else exit 12); "
                   "the summary warns.")
@click.option("--database", "databases", multiple=True, metavar="PATTERN",
              help="Apply only these databases (* ? wildcards).")
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
    # A replay allocates a few objects per event and keeps few cycles: collect young objects far
    # less often, and never scan what the imports left (measured: ~5% of a replay's CPU).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    target = connection_from(kw)
    source = connection_from(kw, "source-")
    live = {k: kw.pop(k) for k in ("source_binlog", "source_server_id", "spool_dir", "follow")}
    kw["unreached_stop"] = UnreachedStop.WARN if kw.pop("allow_unreached_stop") else UnreachedStop.ERROR
    kw["filters"] = Filters.from_options(*(kw.pop(k) for k in ("databases", "ignore_databases", "tables",
                                                               "ignore_tables", "rewrite_db")))
    if not binlogs and not (source.host or source.socket or source.defaults_file):
        raise click.UsageError("Missing argument 'BINLOGS...' (or stream them with --source-host)")
    if kw["target_restored"] and not kw["restart"]:
        raise click.UsageError("--target-restored goes with --restart")
    opts = ReplayOptions(binlogs=expand_binlogs(binlogs), target=target, workers=workers or default_workers(),
                         preflight=not no_preflight, **kw)
    reporter = make_reporter("none" if quiet and progress_mode == "auto" else progress_mode, per_worker=verbose > 0,
                             json_file=progress_file)
    if opts.check_target:
        from binreplay.run.check_target import check_target

        if not binlogs:
            raise click.UsageError("--check-target checks a replay of binlog files: give them")
        check_target(opts, reporter)
        return
    if binlogs and not (source.host or source.socket or source.defaults_file):
        summary = run_replay(opts, reporter)
    else:
        from binreplay.run.live import LiveSource, run_live_replay

        summary, _fetched = run_live_replay(opts, LiveSource(source, start_file=live["source_binlog"],
                                                             spool_dir=live["spool_dir"], follow=live["follow"],
                                                             server_id=live["source_server_id"]), reporter)
    reporter.finish(summary)
