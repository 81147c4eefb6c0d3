"""Batches cut again by table (schedule/partition.py) on real servers: the target equals the source,
and a kill -9 between the commits of a cut pair neither loses nor repeats a transaction."""

from __future__ import annotations

import re
import signal

import pytest

from faultlab import lost_and_duplicated
from helpers import assert_same_content, replay_into
from replays import run_on, setup_backup

TABLES = 4
# Keyless tables: a transaction applied twice shows up as a duplicated row.
SETUP = ["CREATE DATABASE app"] + [f"CREATE TABLE app.l{i} (n INT, v VARCHAR(60))" for i in range(TABLES)]
# Round robin over the tables, one to three rows per transaction: pairs of batches fall apart by table
# into two sides whose members alternate, so each side's batch records several ranges.
WORKLOAD = [f"INSERT INTO app.l{i % TABLES} VALUES " + ",".join(f"({i}, REPEAT('x', {i % 50 + r}))"
                                                                for r in range(i % 3 + 1))
            for i in range(80)]
FLAGS = ("--workers", "2", "--group-max-trx", "6", "-v")


def _cut(stderr: str) -> int:
    m = re.search(r"pairs of batches cut by table to apply side by side: (\d+)", stderr)
    assert m, stderr[-2000:]
    return int(m.group(1))


def _exact(source, target) -> None:
    for i in range(TABLES):
        assert lost_and_duplicated(source, target, f"app.l{i}") == (0, 0), f"app.l{i}"
    assert_same_content(source, target, ["app"])


@pytest.mark.parametrize("mode", ["binlog", "sql"])
def test_cut_pairs_give_the_source(clean_servers, mode: str) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *SETUP)
    run_on(source, WORKLOAD)
    r = replay_into(source, target, start, *FLAGS, "--apply", mode)
    assert r.returncode == 0, r.stderr
    assert _cut(r.stderr) > 0
    _exact(source, target)


@pytest.mark.parametrize("point", ["after-commit:1", "before-commit:2", "after-commit:2", "after-commit:5"])
def test_killed_between_the_commits_of_a_cut_pair(clean_servers, point: str) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *SETUP)
    run_on(source, WORKLOAD)
    # Without the early apply (run/early.py), whose commit would otherwise come first.
    crashed = replay_into(source, target, start, *FLAGS, "--no-early-apply", env={"BINREPLAY_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert "cutting pairs of batches by table" in crashed.stderr, crashed.stderr[-2000:]
    if point == "after-commit:1":
        # One side of the first pair committed alone: its batch recorded one range per run of its
        # members, with members of the other side (not applied) between them.
        ranges = target.execute("SELECT start_pos, end_pos FROM binreplay.applied ORDER BY start_pos")
        assert len(ranges) >= 2, ranges
        assert not target.execute("SELECT 1 FROM binreplay.checkpoint")
    resumed = replay_into(source, target, start, *FLAGS)
    assert resumed.returncode == 0, resumed.stderr
    _exact(source, target)
    again = replay_into(source, target, start, *FLAGS)
    assert again.returncode == 0 and '"applied": 0' in again.stderr, again.stderr[-2000:]
