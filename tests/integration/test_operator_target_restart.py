"""Issue 14 item 13, as an operator meets it: the target server restarts in the middle of a replay.

The run waits for it (bounded by --reconnect-timeout), says so in its progress output, and goes on
from the target's own progress records in the same run: nothing lost, nothing applied twice. A target
that stays down longer than the timeout ends the run with one error line and exit 4, and the same
command resumes once it is back.
"""

from __future__ import annotations

import json
import time

import pytest

from binreplay.errors import ExitCode

from faultlab import assert_exactly_once, start_replay, wait_for_progress
from helpers import replay_into
from replays import shop_after_backup


def _records(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_replay_waits_for_a_restarted_target_and_finishes_in_the_same_run(clean_servers, how: str) -> None:
    """kill -9 (crash recovery) or a clean shutdown of the target mid-replay, started again 4 s later."""
    source, target, start, files = shop_after_backup(clean_servers, 6000, ledger=True)
    proc, _ = start_replay(files, target, start, "--workers", "4", "--group-max-trx", "5")
    seen: list[str] = []
    try:
        progress = wait_for_progress(proc, seen)
        assert progress is not None, "".join(seen)
        applied_before = progress["applied"]
        getattr(target, how)()
        time.sleep(4)     # longer than a worker's retries used to last: they must be waiting now
        assert proc.poll() is None, "".join(seen) + (proc.stderr.read() if proc.stderr else "")
    finally:
        target.start()    # the session's target stays up for the other tests
    _, rest = proc.communicate(timeout=300)
    err = "".join(seen) + rest
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    records = _records(err)
    warnings = [r["message"] for r in records if r["type"] == "warning"]
    assert any("the target is unreachable" in w and "--reconnect-timeout" in w for w in warnings), warnings
    assert any(w.startswith("the target is back after") for w in warnings), warnings
    waits = [r for r in records if r["type"] == "waiting"]
    assert waits and waits[0]["for"] == "target" and waits[0]["timeout_s"] == 300, waits
    summary = next(r for r in records if r["type"] == "summary")
    assert summary["outcome"] == "complete", summary
    # One run from start to end: it went on after the restart rather than being rerun.
    assert summary["applied"] > applied_before and summary["already_applied"] == 0, summary
    assert target.execute("SELECT COUNT(*), MIN(state) FROM binreplay.runs")[0] == (1, "complete")
    assert_exactly_once(source, target, "shop.ledger")


def test_target_down_longer_than_reconnect_timeout_exits_4_and_the_same_command_resumes(clean_servers) -> None:
    source, target, start, files = shop_after_backup(clean_servers, 6000, ledger=True)
    proc, _ = start_replay(files, target, start, "--workers", "4", "--group-max-trx", "5",
                           "--reconnect-timeout", "3")
    seen: list[str] = []
    try:
        progress = wait_for_progress(proc, seen)
        assert progress is not None, "".join(seen)
        target.kill()
        t0 = time.monotonic()
        _, rest = proc.communicate(timeout=120)
        gave_up_after = time.monotonic() - t0
    finally:
        target.start()
    err = "".join(seen) + rest
    assert proc.returncode == ExitCode.TARGET, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("binreplay: error:")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    assert errors[0].startswith("binreplay: error: the target has been unreachable for "), errors
    assert "longer than --reconnect-timeout 3" in errors[0] and "rerun the same command to resume" in errors[0]
    assert 3 <= gave_up_after < 60, gave_up_after
    rerun = replay_into(source, target, start, "--workers", "4")
    assert rerun.returncode == 0, rerun.stderr
    assert any(r["type"] == "warning" and r["message"].startswith("resuming run") for r in _records(rerun.stderr))
    assert_exactly_once(source, target, "shop.ledger")
