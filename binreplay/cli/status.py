"""`binreplay status`: where the last replay into the target stands."""

from __future__ import annotations

import sys

import click

from binreplay.cli.app import hide_password_from_process_list, main
from binreplay.cli.options import connection_from, connection_options, expand_binlogs


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
