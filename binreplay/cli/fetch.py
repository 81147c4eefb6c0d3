"""`binreplay fetch`: binlogs from a live server into local files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from binreplay.cli.app import hide_password_from_process_list, main, setup_logging
from binreplay.cli.options import connection_from, connection_options


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
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "json", "plain", "none"]),
              default="auto", show_default=True,
              help="Progress while fetching: a counter on a terminal, a line every 10 s, JSON lines, or none.")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def fetch_cmd(out, start_file, start_gtid, stop_file, stop_never, source_server_id, progress_mode, verbose, quiet,
              **kw) -> None:
    """Download binlogs from a server into files identical to its own (like mysqlbinlog --raw), resumably."""
    from binreplay.report.fetch_progress import FetchProgress
    from binreplay.source.live.fetch import FetchOptions, check_fetch_options, fetch_until_signalled, random_server_id

    hide_password_from_process_list(sys.argv)
    setup_logging(verbose, quiet)
    opts = FetchOptions(source=connection_from(kw, "source-"), out=out, start_file=start_file,
                        start_gtid=start_gtid, stop_file=stop_file, follow=stop_never,
                        server_id=source_server_id or random_server_id())
    check_fetch_options(opts)
    progress = FetchProgress("none" if quiet and progress_mode == "auto" else progress_mode)
    try:
        stats = fetch_until_signalled(opts, on_commit=progress)
    except BaseException:
        progress.close()
        raise
    progress.close(stats)
    if not quiet:
        end = f"{stats.position[0]}:{stats.position[1]}" if stats.position else "nothing new"
        click.echo(f"binreplay: fetched {stats.events} events ({stats.bytes} bytes) into {out}; "
                   f"up to {end}; {stats.reconnects} reconnect(s)"
                   f"{f'; {stats.stop_reason}' if stats.stop_reason else ''}", err=True)
