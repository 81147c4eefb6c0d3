"""`binreplay forget`: remove the progress schema from the target once the restore is accepted."""

from __future__ import annotations

import dataclasses
import json
import sys

import click

from binreplay.cli.app import hide_password_from_process_list, main
from binreplay.cli.options import connection_from, connection_options


@main.command("forget")
@connection_options()
@click.option("--progress-schema", default="binreplay", show_default=True, help="Schema of the progress tables.")
@click.option("--force", is_flag=True, help="Remove them although the last run did not complete (it can then no "
                                            "longer be resumed).")
@click.option("--target-binlog", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Whether the DROP goes to the target's binlog (off: like a replay with --target-binlog off, "
                   "whose progress schema never reached it).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Say what was removed as text or as one JSON document.")
def forget_cmd(progress_schema, force, target_binlog, output_format, **kw) -> None:
    """Remove the target's progress records (the progress schema) once the restore is accepted.

    Refused while a replay holds the run lock, and (without --force) when the last run did not
    complete."""
    from binreplay.commands.forget import forget

    hide_password_from_process_list(sys.argv)
    done = forget(connection_from(kw), progress_schema, force=force, target_binlog=target_binlog)
    click.echo(json.dumps(dataclasses.asdict(done)) if output_format == "json" else done.line())
