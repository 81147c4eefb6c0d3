"""The early apply (run/early.py) on real servers: what is applied while the input is validated
commits only once all of it was accepted. A refused input leaves the target as it was, a kill -9
while transactions are held loses and repeats nothing, and a failure while applying early changes
nothing of what the run then does.

BINREPLAY_EARLY_LOCKSTEP=1 makes the validation read wait until each batch it handed over is applied
(held), so these tests know that something was held when the read ended, failed or was killed."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from binreplay.errors import ExitCode

from faultlab import lost_and_duplicated
from helpers import assert_same_content, binlogs_from, replay_into, run_binreplay
from replays import one_line_error, run_on, setup_backup, summary_of

LOCKSTEP = {"BINREPLAY_EARLY_LOCKSTEP": "1"}
FLAGS = ("--workers", "2", "--group-max-trx", "5", "-v")
SETUP = ["CREATE DATABASE app",
         "CREATE TABLE app.log (n INT, v VARCHAR(60))",      # keyless: a repeated insert shows as a duplicate
         "CREATE TABLE app.acct (id INT PRIMARY KEY, bal INT)",
         "INSERT INTO app.acct VALUES " + ",".join(f"({i}, 0)" for i in range(1, 11))]
ROWS = [f"INSERT INTO app.log VALUES ({i}, REPEAT('x', {i % 40}))" if i % 2 else
        f"UPDATE app.acct SET bal = bal + {i + 1} WHERE id = {i % 10 + 1}" for i in range(60)]
DDL_AT = 40     # a DDL there ends the early apply: the run applies it and the rest after the commit


def _early(stderr: str) -> int:
    m = re.search(r"(\d+) transactions applied while the input was validated", stderr)
    return int(m.group(1)) if m else 0


def _exact(source, target) -> None:
    assert lost_and_duplicated(source, target, "app.log") == (0, 0)
    assert_same_content(source, target, ["app"])


def _workload(source) -> None:
    run_on(source, ROWS[:DDL_AT] + ["ALTER TABLE app.acct ADD COLUMN note VARCHAR(10) NULL"] + ROWS[DDL_AT:])


def test_early_then_the_pool_give_the_source(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *SETUP)
    _workload(source)
    r = replay_into(source, target, start, *FLAGS, env=LOCKSTEP)
    assert r.returncode == 0, r.stderr
    assert _early(r.stderr) == DDL_AT, r.stderr[-2000:]    # everything before the DDL, nothing after it
    summary = summary_of(r)
    assert (summary["applied"], summary["skipped"], summary["already_applied"]) == (61, 0, 0), summary
    # The summary names the run's last transaction, not the early apply's.
    assert summary["last_gtid"] == source.execute("SELECT @@gtid_binlog_pos")[0][0], summary
    _exact(source, target)
    again = replay_into(source, target, start, *FLAGS)
    assert again.returncode == 0 and '"applied": 0' in again.stderr, again.stderr[-2000:]


def _corrupt_copy(files: list[str], tmp_path: Path) -> list[str]:
    """The binlogs with one byte flipped inside the last transactions (its checksum fails)."""
    last = Path(files[-1])
    data = bytearray(last.read_bytes())
    data[len(data) - 300] ^= 0x55
    out = []
    for f in files:
        copy = tmp_path / Path(f).name
        copy.write_bytes(bytes(data) if Path(f) == last else Path(f).read_bytes())
        out.append(str(copy))
    return out


def test_refused_input_leaves_the_target_as_it_was(clean_servers, tmp_path: Path) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *SETUP)
    run_on(source, ROWS)
    before = target.execute("SELECT COUNT(*), SUM(bal) FROM app.log, app.acct")
    files = _corrupt_copy(binlogs_from(source, start[0]), tmp_path)
    r = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                      "--progress", "none", "--group-max-trx", "5", env=LOCKSTEP)
    one_line_error(r, ExitCode.BAD_INPUT, "checksum")
    assert target.execute("SELECT COUNT(*), SUM(bal) FROM app.log, app.acct") == before
    assert not target.execute("SHOW DATABASES LIKE 'binreplay'")   # the progress schema it made is gone too
    # The same with -v: transactions were held when the read refused the input, and rolled back.
    v = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                      "--progress", "none", "--group-max-trx", "5", "-v", env=LOCKSTEP)
    assert v.returncode == ExitCode.BAD_INPUT, v.stderr
    m = re.search(r"the early apply rolled back (\d+) held transactions", v.stderr)
    assert m and int(m.group(1)) >= 50, v.stderr
    assert target.execute("SELECT COUNT(*), SUM(bal) FROM app.log, app.acct") == before
    assert not target.execute("SHOW DATABASES LIKE 'binreplay'")


@pytest.mark.parametrize("point", ["early-held:1", "early-held:3", "before-commit:1", "after-commit:1"])
def test_killed_while_held_or_at_the_early_commit(clean_servers, point: str) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *SETUP)
    _workload(source)
    crashed = replay_into(source, target, start, *FLAGS, env={**LOCKSTEP, "BINREPLAY_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    if point.startswith(("early-held", "before-commit")):
        # Nothing held was committed.
        assert target.execute("SELECT COUNT(*) FROM app.log")[0][0] == 0
    else:
        # The early commit: everything before the DDL, with the records of its batches.
        assert target.execute("SELECT COUNT(*) FROM app.log")[0][0] == DDL_AT // 2
        assert target.execute("SELECT SUM(transactions) FROM binreplay.applied")[0][0] == DDL_AT
    resumed = replay_into(source, target, start, *FLAGS)
    assert resumed.returncode == 0, resumed.stderr
    _exact(source, target)
    again = replay_into(source, target, start, *FLAGS)
    assert again.returncode == 0 and '"applied": 0' in again.stderr, again.stderr[-2000:]


def test_a_failure_while_applying_early_is_met_again_by_the_run(clean_servers) -> None:
    """The target lacks a row an early UPDATE needs: the early apply rolls back and the run applies from
    the start, stopping at that transaction as a run without the early apply does, everything before
    it applied and recorded."""
    source, target = clean_servers
    start = setup_backup(source, target, *SETUP)
    run_on(source, ROWS)
    failing = 8                       # the first UPDATE of id 9 (ROWS[i] updates id i % 10 + 1)
    target.execute("DELETE FROM app.acct WHERE id = 9")
    r = replay_into(source, target, start, "--workers", "1", "--group-max-trx", "5", "-v", env=LOCKSTEP)
    assert r.returncode == ExitCode.TARGET, r.stderr[-2000:]
    assert "the early apply stopped at" in r.stderr and "applying from the start" in r.stderr, r.stderr[-3000:]
    assert _early(r.stderr) == 0
    # Its batch of 5 was refused; the batches before it are applied and recorded.
    before = failing // 5 * 5
    assert target.execute("SELECT COUNT(*) FROM app.log")[0][0] == sum(1 for i in range(before) if i % 2)
    recorded = target.execute("SELECT (SELECT COALESCE(MAX(transactions), 0) FROM binreplay.checkpoint) + "
                              "(SELECT COALESCE(SUM(transactions), 0) FROM binreplay.applied)")[0][0]
    assert recorded == before
