"""Lock waits and deadlocks caused by another session on the target are retried, then give up resumably."""

from __future__ import annotations

import time

from faultlab import assert_exactly_once, start_replay
from helpers import binlogs_from, replay_into
from replays import BASE, run_on, setup_backup


def _locked_replay(clean_servers, *extra: str):
    source, target = clean_servers
    start = setup_backup(source, target, *BASE, "CREATE TABLE app.log (n INT)")  # keyless: a ledger
    run_on(source, [s for i in range(30)
                    for s in ("BEGIN", f"UPDATE app.users SET score = score + {i} WHERE id = {1 + i % 3}",
                              f"INSERT INTO app.log VALUES ({i})", "COMMIT")])
    target.execute("SET GLOBAL innodb_lock_wait_timeout = 1")
    holder = target.connect()
    cur = holder.cursor()
    cur.execute("BEGIN")
    cur.execute("SELECT * FROM app.users WHERE id = 1 FOR UPDATE")
    files = binlogs_from(source, start[0])
    proc, _ = start_replay(files, target, start, "--progress", "none", "-v", *extra)
    return source, target, start, holder, proc


def test_lock_wait_timeouts_are_retried_until_the_lock_is_released(clean_servers, reliability) -> None:
    source, target, start, holder, proc = _locked_replay(clean_servers)
    time.sleep(3)
    assert proc.poll() is None  # still retrying
    holder.rollback()
    holder.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "retrying" in err and "1205" in err
    lost, dup = assert_exactly_once(source, target, "app.log")
    reliability.record("lock wait timeouts (competing FOR UPDATE, innodb_lock_wait_timeout=1)",
                       injected=err.count("retrying"), lost=lost, duplicated=dup,
                       outcome="retried in the same run until the lock was released; identical")


def test_retries_exhausted_stop_resumably(clean_servers, reliability) -> None:
    source, target, start, holder, proc = _locked_replay(clean_servers, "--retries", "1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert "gave up" in err and "rerun" in err
    holder.rollback()
    holder.close()
    result = replay_into(source, target, start)
    assert result.returncode == 0, result.stderr
    lost, dup = assert_exactly_once(source, target, "app.log")
    reliability.record("lock wait timeouts beyond --retries", injected=1, lost=lost, duplicated=dup,
                       outcome="exit 4, then the rerun resumed; identical")


def test_worker_connections_killed_mid_transaction(clean_servers, reliability) -> None:
    """KILL CONNECTION of workers while they apply or commit: nothing lost, nothing applied twice."""
    import threading

    from binreplay.devtools.workload import create_base, run_workload

    from replays import setup_backup as _setup

    source, target = clean_servers
    with source.connect() as conn:
        create_base(conn, customers=300, products=100)
    start = _setup(source, target, schemas=("shop",))
    with source.connect() as conn:
        run_workload(conn, 4000, ledger=True)
    killed = []
    stop = threading.Event()

    def killer() -> None:
        with target.connect() as conn:
            cur = conn.cursor()
            while not stop.is_set():
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND "
                            "(INFO LIKE 'BINLOG%%' OR INFO LIKE 'INSERT INTO `binreplay`%%' OR INFO LIKE 'COMMIT%%')")
                for (thread_id,) in cur.fetchall():
                    try:
                        cur.execute(f"KILL CONNECTION {int(thread_id)}")
                        killed.append(thread_id)
                    except Exception:  # noqa: BLE001 - it may have finished meanwhile
                        pass
                time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    try:
        result = replay_into(source, target, start, "--workers", "4", "--group-max-trx", "20", "--retries", "50")
    finally:
        stop.set()
        t.join()
    assert result.returncode == 0, result.stderr
    assert killed, "the test killed no connection"
    lost, dup = assert_exactly_once(source, target, "shop.ledger")
    reliability.record("worker connections killed by the server (KILL CONNECTION) mid-transaction and "
                       "mid-COMMIT", injected=len(killed), lost=lost, duplicated=dup,
                       outcome="reconnected and retried in the same run; identical")


def test_deadlock_with_a_competing_session_is_retried(clean_servers, reliability) -> None:
    """A real deadlock: binreplay's transaction holds row 1 and waits for row 2, which a competing
    session holds; the competitor then asks for row 1. InnoDB rolls back the lighter transaction
    (binreplay's: the competitor has written many undo records), binreplay retries, nothing is lost."""
    source, target = clean_servers
    start = setup_backup(source, target, *BASE, "CREATE TABLE app.log (n INT)")
    run_on(source, ["BEGIN", "UPDATE app.users SET score = score + 10 WHERE id = 1",
                    "UPDATE app.users SET score = score + 20 WHERE id = 2", "INSERT INTO app.log VALUES (1)", "COMMIT"]
           + [f"INSERT INTO app.log VALUES ({i})" for i in range(2, 6)])
    target.execute("CREATE DATABASE scratch")
    target.execute("CREATE TABLE scratch.t (n INT)")
    competitor = target.connect()
    cur = competitor.cursor()
    cur.execute("BEGIN")
    cur.execute("INSERT INTO scratch.t SELECT seq FROM mysql.seq_1_to_5000")  # heavy: InnoDB keeps it, kills ours
    cur.execute("SELECT * FROM app.users WHERE id = 2 FOR UPDATE")
    files = binlogs_from(source, start[0])
    proc, _ = start_replay(files, target, start, "--progress", "none", "-v", "--workers", "1")
    # Row events wait for row locks inside find_row(), which INNODB_TRX does not always show as LOCK WAIT.
    deadline = time.monotonic() + 60
    while not target.execute("SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'BINLOG%%' "
                             "AND STATE LIKE '%%find_row%%' AND TIME_MS > 300"):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "binreplay never waited for row 2"
        time.sleep(0.05)
    cur.execute("UPDATE app.users SET score = score WHERE id = 1")  # closes the cycle: a deadlock
    competitor.rollback()
    competitor.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "1213" in err and "retrying" in err, err
    target.execute("DROP DATABASE scratch")
    lost, dup = assert_exactly_once(source, target, "app.log")
    reliability.record("deadlock with a competing session", injected=err.count("1213"), lost=lost, duplicated=dup,
                       outcome="retried in the same run; identical")
