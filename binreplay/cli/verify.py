"""`binreplay verify`: the target's content against a reference server."""

from __future__ import annotations

import sys

import click

from binreplay.cli.app import hide_password_from_process_list, main, setup_logging
from binreplay.cli.options import connection_from, connection_options


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
    """Compare the target with a reference server (the source, or a serial replay), table by table: rows,
    columns, engines, indexes and triggers. The reference must be named (--reference-host/-socket)."""
    import json

    from binreplay.commands.verify import VerifyOptions, human_report, json_report, verdict, verify
    from binreplay.errors import DifferenceFound, UsageError

    hide_password_from_process_list(sys.argv)
    setup_logging(0, quiet)
    reference = connection_from(kw, "reference-")
    if not (reference.host or reference.socket or reference.defaults_file or reference.defaults_extra_file):
        # Defaults would name the local server, often the target itself: a comparison with no meaning.
        raise UsageError("verify needs the reference server to compare with: give --reference-host (or "
                         "--reference-socket, --reference-defaults-file)")
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
