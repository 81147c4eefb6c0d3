"""The command line: one module per command; `app` is the group and the one place an outcome
becomes an exit code. Importing this package registers every command on `main`."""

from binreplay.cli import demo, fetch, plan, replay, sandbox, status, verify  # noqa: F401  (they register)
from binreplay.cli.app import main

__all__ = ["main"]
