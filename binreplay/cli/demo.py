"""`binreplay demo`: a point-in-time restore on local sandbox servers."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from binreplay.cli.app import main


@main.command("demo")
@click.option("--transactions", type=click.IntRange(100, 10_000_000), default=5000, show_default=True,
              help="Source transactions to generate after the backup.")
@click.option("--workdir", type=click.Path(path_type=Path), help="Keep the sandboxes here instead of a temp dir.")
@click.option("--keep", is_flag=True, help="Do not delete the temp dir afterwards.")
def demo_cmd(transactions: int, workdir: Path | None, keep: bool) -> None:
    """Run a point-in-time restore on local sandbox servers and compare with mariadb-binlog | mariadb."""
    from binreplay.devtools.demo import run_demo

    sys.exit(run_demo(transactions, workdir, keep))
