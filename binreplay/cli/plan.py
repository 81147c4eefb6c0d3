"""`binreplay plan`: a survey of binlogs that touches no server."""

from __future__ import annotations

import click

from binreplay.cli.app import main, setup_logging
from binreplay.cli.options import expand_binlogs, selection_from, selection_options


@main.command("plan")
@click.argument("binlogs", nargs=-1, required=True)
@selection_options
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
    from binreplay.commands.plan.report import to_json, to_text
    from binreplay.commands.plan.survey import make_plan

    setup_logging(verbose, quiet)
    plan = make_plan(expand_binlogs(binlogs), selection_from(kw), top)
    click.echo(to_json(plan) if output_format == "json" else to_text(plan, top), nl=False)
