"""Binlog file format: framing, event bodies, constants. No I/O beyond reading files."""
