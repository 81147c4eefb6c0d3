"""`binreplay plan`: survey binlogs, simulate the scheduler, report."""
