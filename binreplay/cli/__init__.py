"""The command line: one module per command; the one place an outcome becomes an exit code."""
