"""kill -9 at named points and at random moments; a rerun must neither lose nor repeat anything."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from helpers import assert_same_content, binlogs_from, replay_into
from test_replay_e2e import BASE, run_on, setup_backup

WORKLOAD = (
    # a table without a primary key: a transaction applied twice would show up as extra rows
    ["CREATE TABLE app.log (msg VARCHAR(40), n INT)"]
    + [f"INSERT INTO app.log VALUES ('a', {i})" for i in range(30)]
    + ["ALTER TABLE app.log ADD COLUMN extra INT DEFAULT 7"]
    + [f"UPDATE app.users SET score = score + {i} WHERE id = {i % 3 + 1}" for i in range(20)]
    + ["CREATE TABLE app.more (id INT PRIMARY KEY)", "INSERT INTO app.more VALUES (1), (2)"]
    + [f"INSERT INTO app.log VALUES ('b', {i}, {i})" for i in range(30)]
)


@pytest.mark.parametrize("point", ["before-commit:5", "after-commit:5", "ddl-started:1", "ddl-executed:1",
                                   "ddl-started:3", "checkpoint:1"])
def test_crash_at_named_point_then_resume(clean_servers, point: str) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, WORKLOAD[:40])
    source.execute("FLUSH BINARY LOGS")  # a rotation in the middle
    run_on(source, WORKLOAD[40:])
    env = {"BINREPLAY_CRASH_AT": point}
    if point.startswith("checkpoint"):
        env["BINREPLAY_CHECKPOINT_INTERVAL"] = "0"
    # Small groups over several workers: many commits, so the n-th crash point falls mid-replay.
    crashed = replay_into(source, target, start, "--workers", "4", "--group-max-trx", "5", env=env)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    resumed = replay_into(source, target, start)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_content(source, target)
    # Every transaction is recorded exactly once: the applied rows plus the checkpoint cover them all.
    again = replay_into(source, target, start)
    assert again.returncode == 0 and '"applied": 0' in again.stderr


def _shop_after_backup(clean_servers, transactions: int, **workload):
    """The shop database backed up into the target, then `transactions` more on the source."""
    from binreplay.workload import create_base, run_workload

    source, target = clean_servers
    with source.connect() as conn:
        create_base(conn, customers=300, products=100)
    start = setup_backup(source, target, schemas=("shop",))
    with source.connect() as conn:
        run_workload(conn, transactions, **workload)
    return source, target, start, binlogs_from(source, start[0])


def _start_replay(files, target, start, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "binreplay", "replay", *files, *target.connection_flags(),
                             "--start-position", str(start[1]), "--progress", "none", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_random_kill_9_during_replay(clean_servers) -> None:
    """The normal suite's sample of the soak: several kill -9 at random moments of one replay."""
    source, target, start, files = _shop_after_backup(clean_servers, 5000, rotate_every=2000, ddl_at=2500)
    rnd = random.Random(7)
    kills = 0
    for attempt in range(8):
        # Parallel workers with small groups: many commits in flight when the kill lands.
        proc = _start_replay(files, target, start, "--workers", "4", "--group-max-trx", "5")
        time.sleep(rnd.uniform(0.4, 0.9))
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read()
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    final = replay_into(source, target, start)
    assert final.returncode == 0, final.stderr
    assert kills >= 2
    assert_same_content(source, target)


def test_sigterm_stops_resumably(clean_servers) -> None:
    source, target, start, files = _shop_after_backup(clean_servers, 3000)
    proc = _start_replay(files, target, start)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5
    if proc.returncode != 0:  # it may have finished before the signal
        assert proc.returncode == 130, err
        assert "resume" in err
    final = replay_into(source, target, start)
    assert final.returncode == 0, final.stderr
    assert_same_content(source, target)
