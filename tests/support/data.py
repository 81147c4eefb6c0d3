"""The test data the project keeps (tests/data): real binlog fixtures with their README and licences."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
BINLOGS = DATA / "binlogs"            # README.md there: origin and licence of every file
MYSQL_BINLOGS = BINLOGS / "mysql"
