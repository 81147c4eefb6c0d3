"""`binreplay plan`: a survey of binlogs that touches no server.

Servers only generate the binlogs (real MariaDB, binlog_row_metadata=FULL); the plan itself
runs on the files, in a real CLI process, and is checked against what was written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from binreplay.commands.plan.survey import ModeEstimate, WorkerEstimate, recommend
from binreplay.errors import ExitCode

from data import BINLOGS as FIXTURES
from helpers import run_binreplay
from replays import one_line_error


def plan_json(*args: str) -> dict:
    r = run_binreplay("plan", *args, "--format", "json")
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-3000:]}"
    return json.loads(r.stdout)










@pytest.mark.parametrize("name", ["mysql/percona-8.0.45-gtid.000002", "mysql/mc-8.0.40-minimal-row-image.000001",
                                  "mysql/mc-8.0.32-transaction-compression.000001",
                                  "mysql/apecloud-8.0.31-gtid-payload-rowsquery.000057",
                                  "mariadb/mc-10.5.15-annotate-rows.000001"])
def test_real_fixtures_plan(name: str) -> None:
    plan = plan_json(str(FIXTURES / name))
    assert plan["transactions"] > 0 and plan["recommendation"]["workers"] >= 1
    if "compression" in name:
        assert plan["compressed"] == plan["transactions"] == 1 and plan["rows"] == 1
    if "minimal-row-image" in name:
        (t,) = plan["tables"]
        assert t["rows"] == 1 and t["row_keys"].startswith("no primary key in the binlog")


def test_bad_input_is_one_line_with_replays_exit_code(tmp_path: Path) -> None:
    r = run_binreplay("plan", str(tmp_path / "nope.000001"))
    one_line_error(r, ExitCode.BAD_INPUT, "not found", "nope.000001")
    data = bytearray((FIXTURES / "mysql/percona-8.0.45-gtid.000002").read_bytes())
    data[len(data) // 2] ^= 0x55
    corrupt = tmp_path / "corrupt.000002"
    corrupt.write_bytes(bytes(data))
    r = run_binreplay("plan", str(corrupt))
    one_line_error(r, ExitCode.BAD_INPUT, "checksum")
    assert r.stdout == ""


def _mode(name: str, *speedups: float) -> ModeEstimate:
    return ModeEstimate(name, [WorkerEstimate(n, s, s, [], 0) for n, s in zip((4, 8, 16), speedups)], 1, 0.1, 10.0)


def test_recommendation_prefers_fewer_workers_within_ten_percent() -> None:
    rec = recommend([_mode("row", 3.0, 5.5, 5.8), _mode("table", 2.0, 2.5, 2.5), _mode("commit-order", 1, 1, 1)])
    assert (rec.workers, rec.dependency) == (8, "row") and "5.8x" in rec.reason
    rec = recommend([_mode("row", 1.0, 1.0, 1.0), _mode("table", 1.0, 1.0, 1.0), _mode("commit-order", 1.05, 1, 1)])
    assert rec.workers == 1
    rec = recommend([_mode("row", 2.0, 2.0, 2.0), _mode("table", 1.0, 1.0, 1.0), _mode("commit-order", 3.9, 4, 4)])
    assert (rec.workers, rec.dependency) == (4, "commit-order")
