"""Binlog bytes in, selected and filtered transactions out: files, live servers, bounds, filters."""
