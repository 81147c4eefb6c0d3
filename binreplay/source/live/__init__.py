"""Binlogs from a live server: the replication protocol, the fetch into a spool, --follow."""
