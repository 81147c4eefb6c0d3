"""Lock waits and deadlocks caused by another session on the target are retried, then give up resumably."""

from __future__ import annotations

import subprocess
import sys
import time

from helpers import assert_same_content, binlogs_from, replay_into
from test_replay_e2e import BASE, run_on, setup_backup


def _locked_replay(clean_servers, *extra: str):
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"UPDATE app.users SET score = score + {i} WHERE id = {1 + i % 3}" for i in range(30)])
    target.execute("SET GLOBAL innodb_lock_wait_timeout = 1")
    holder = target.connect()
    cur = holder.cursor()
    cur.execute("BEGIN")
    cur.execute("SELECT * FROM app.users WHERE id = 1 FOR UPDATE")
    files = binlogs_from(source, start[0])
    proc = subprocess.Popen([sys.executable, "-m", "binreplay", "replay", *files, *target.connection_flags(),
                             "--start-position", str(start[1]), "--progress", "none", "-v", *extra],
                            stderr=subprocess.PIPE, text=True)
    return source, target, start, holder, proc


def test_lock_wait_timeouts_are_retried_until_the_lock_is_released(clean_servers) -> None:
    source, target, start, holder, proc = _locked_replay(clean_servers)
    time.sleep(3)
    assert proc.poll() is None  # still retrying
    holder.rollback()
    holder.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "retrying" in err and "1205" in err
    assert_same_content(source, target)


def test_retries_exhausted_stop_resumably(clean_servers) -> None:
    source, target, start, holder, proc = _locked_replay(clean_servers, "--retries", "1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert "gave up" in err and "rerun" in err
    holder.rollback()
    holder.close()
    result = replay_into(source, target, start)
    assert result.returncode == 0, result.stderr
    assert_same_content(source, target)
