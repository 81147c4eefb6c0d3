"""Binlogs from a live server: the replication protocol, and the fetch into local spool files."""
