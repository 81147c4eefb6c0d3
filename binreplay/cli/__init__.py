"""The command line: one module per command; `app` is the group and the one place an outcome
becomes an exit code. A command's module is imported when the command is run (or listed), which
registers it on `main`: a replay does not pay for importing the demo or the sandbox tools."""

from binreplay.cli.app import main

__all__ = ["main"]
