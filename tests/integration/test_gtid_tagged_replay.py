"""MySQL 8.4 tagged GTIDs against a real target: --include-gtids/--exclude-gtids select by tag."""

from __future__ import annotations

from decimal import Decimal

from data import BINLOGS as FIXTURES
from helpers import run_binreplay

FIXTURE = FIXTURES / "mysql" / "mc-9.6.0-gtid-tagged.000001"


UUID = "55778904-0299-11f1-b1b8-4ef0c4956feb"  # the fixture's server (its PREVIOUS_GTIDS: :1-13, :mytag:1-2)


def test_replay_skips_and_applies_by_tagged_gtid(clean_servers):
    """Into the MariaDB target (--apply sql: the file is MySQL 9.6's). The file has no CREATE TABLE: the
    TABLE_MAP says test.orders is INT, INT, DECIMAL(10,2); its one row is (3, 100, 250.00)."""
    _, target = clean_servers
    target.execute("CREATE DATABASE test")
    target.execute("CREATE TABLE test.orders (id INT PRIMARY KEY, qty INT, amount DECIMAL(10,2))")

    def replay(*flags: str) -> None:
        proc = run_binreplay("replay", str(FIXTURE), *target.connection_flags(), "--progress", "none",
                             "--apply", "sql", *flags, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]

    replay("--exclude-gtids", f"{UUID}:1-13:MyTag:1-3")     # the backup already has mytag:3
    assert target.execute("SELECT * FROM test.orders") == []
    # The first run applied nothing, but its mark went past the start (it skipped everything): the
    # target is still as restored, which --restart is told.
    replay("--restart", "--target-restored", "--exclude-gtids", f"{UUID}:1-13:mytag:1-2")  # its PREVIOUS_GTIDS
    assert target.execute("SELECT * FROM test.orders") == [(3, 100, Decimal("250.00"))]
