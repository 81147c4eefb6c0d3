"""kill -9 at named points and at random moments; a rerun must neither lose nor repeat anything."""

from __future__ import annotations

import json
import signal
import time

import pytest

from faultlab import (
    BackupImage,
    assert_exactly_once,
    kill_chains,
    resume_mark,
    start_replay,
    time_to_resume,
    wait_for_progress,
)
from helpers import replay_into
from replays import BASE, run_on, setup_backup, shop_after_backup

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
                                   "ddl-started:3", "checkpoint:1", "file-rotation:1"])
def test_crash_at_named_point_then_resume(clean_servers, reliability, point: str) -> None:
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
    mark = resume_mark(target)
    t0 = time.time()
    resumed = replay_into(source, target, start)
    assert resumed.returncode == 0, resumed.stderr
    assert mark is None or resume_mark(target) >= mark
    lost, dup = assert_exactly_once(source, target, "app.log")
    # Every transaction is recorded exactly once: the applied rows plus the checkpoint cover them all.
    again = replay_into(source, target, start)
    assert again.returncode == 0 and '"applied": 0' in again.stderr
    if point.startswith("ddl"):
        # The interrupted DDL was detected on resume and completed or recognised as done (never run twice).
        assert "interruption" in resumed.stderr, resumed.stderr
    reliability.record(f"kill -9 at a named point: {point.split(':')[0]}", injected=1, lost=lost, duplicated=dup,
                       resume_s=time_to_resume(resumed.stderr, t0))




def _kill_sample(clean_servers, reliability, *, transactions: int, kills: int, seed: int, label: str) -> None:
    source, target, start, files = shop_after_backup(clean_servers, transactions, rotate_every=transactions // 3,
                                                      ddl_at=transactions // 2, ledger=True)
    image = BackupImage(["shop"]).save(target)  # the restored backup, for each new chain
    result = kill_chains(source, target, start, files, image, kills=kills, seed=seed, ledger="shop.ledger",
                         extra=("--workers", "4", "--group-max-trx", "5"))
    assert result.kills == kills and result.marks_checked == kills
    reliability.record(label, injected=result.kills, lost=result.lost, duplicated=result.duplicated,
                       resume_s=result.resume_s,
                       outcome=f"identical to the source after each of {result.completed_chains} complete replays")


def test_random_kill_9_during_replay(clean_servers, reliability) -> None:
    """The normal suite's sample of the soak: 20 kill -9 at random moments of parallel replays."""
    _kill_sample(clean_servers, reliability, transactions=6000, kills=20, seed=7,
                 label="kill -9 of binreplay at a random moment")


@pytest.mark.soak
def test_soak_kill_9(clean_servers, reliability) -> None:
    """The soak: 200 kill -9 at random moments (`pytest -m soak`)."""
    _kill_sample(clean_servers, reliability, transactions=20000, kills=200, seed=11,
                 label="kill -9 of binreplay at a random moment (soak)")


def test_sigterm_stops_resumably(clean_servers, reliability) -> None:
    """SIGTERM and SIGINT while transactions are being applied: exit 130 within seconds, resumable."""
    # Enough work for both signals to land mid-replay, the second in a run that resumes the first: one
    # transaction per commit still applies ~3,000 a second, and progress records come once a second.
    source, target, start, files = shop_after_backup(clean_servers, 12000, ledger=True)
    stops = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc, _ = start_replay(files, target, start, "--workers", "2", "--group-max-trx", "1")
        seen: list[str] = []
        assert wait_for_progress(proc, seen) is not None, "".join(seen)
        proc.send_signal(sig)
        t0 = time.monotonic()
        _, rest = proc.communicate(timeout=30)
        stops.append(time.monotonic() - t0)
        err = "".join(seen) + rest
        assert proc.returncode == 130, err
        assert "resume" in err and stops[-1] < 5
        summary = [json.loads(line) for line in err.splitlines() if line.startswith('{"')][-1]
        assert summary["type"] == "summary" and summary["outcome"] == "interrupted"
        assert summary["applied"] > 0
    t0 = time.time()
    final = replay_into(source, target, start)
    assert final.returncode == 0, final.stderr
    lost, dup = assert_exactly_once(source, target, "shop.ledger")
    reliability.record("SIGTERM / SIGINT", injected=2, lost=lost, duplicated=dup,
                       resume_s=time_to_resume(final.stderr, t0),
                       outcome=f"exit 130 within {max(stops):.2f} s, rerun resumed; identical")
