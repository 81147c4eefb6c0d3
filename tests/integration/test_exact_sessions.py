"""Exactness where the source's sessions matter: non-transactional tables inside groups, and temporary
tables of STATEMENT/MIXED binlogs across kills, checkpoints and lost worker sessions. Each replay is
compared by content with `mariadb-binlog | mariadb` (tests/support/pipe_reference.py) at 1 and 8
workers in both apply modes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from pipe_reference import (
    MODES,
    PROGRESS_SCHEMA,
    WORKERS,
    Backup,
    differences,
    exact_as_pipe,
    pipe_replay,
    snapshot,
    take_backup,
)

from binreplay.devtools.sandbox import Sandbox
from binreplay.errors import ExitCode

from helpers import binlogs_from
from replays import BASE

MYISAM = "CREATE TABLE app.m (n INT, note VARCHAR(20)) ENGINE=MyISAM"   # keyless: a double shows as extra rows
LEDGER = "CREATE TABLE app.ledger (id INT PRIMARY KEY AUTO_INCREMENT, user_id INT, total INT)"


def _backup(source: Sandbox, tmp_path, *statements: str) -> Backup:
    for sql in statements:
        source.execute(sql)
    return take_backup(source, ["app"], tmp_path / "backup.sql")


def _start(target: Sandbox, files: list[str], backup: Backup, workers: int, mode: str,
           *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "binreplay", "replay", *files, *target.connection_flags(),
                             "--start-position", str(backup.pos), "--workers", str(workers), "--apply", mode,
                             "--progress", "none", "-v", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _each_against_pipe(source: Sandbox, target: Sandbox, backup: Backup,
                       replay: Callable[[list[str], int, str], subprocess.Popen[str]]) -> None:
    """Like pipe_reference.exact_as_pipe, for replays the test interferes with while they run:
    `replay(files, workers, mode)` starts binreplay on the restored target and does its mischief."""
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    pipe_replay(target, files, backup.pos)
    reference = snapshot(target)
    for mode in MODES:
        for workers in WORKERS:
            backup.restore(target)
            target.execute(f"DROP DATABASE IF EXISTS {PROGRESS_SCHEMA}")
            proc = replay(files, workers, mode)
            _, err = proc.communicate(timeout=300)
            label = f"--workers {workers} --apply {mode}"
            assert proc.returncode == 0, f"{label}: exit {proc.returncode}\n{err[-3000:]}"
            diffs = differences(reference, snapshot(target))
            assert not diffs, f"{label} differs from the pipe:\n  " + "\n  ".join(diffs[:20])


class _RowLock:
    """A row lock held on the target by another session, as a competing application would."""

    def __init__(self, target: Sandbox, sql: str) -> None:
        self.conn = target.connect("app")
        with self.conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(sql)

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


# ---- class 4: non-transactional tables inside groups ------------------------------------------

def test_lock_wait_retries_never_apply_non_transactional_rows_twice(clean_servers, tmp_path) -> None:
    """MyISAM row transactions between InnoDB ones whose row the target has locked: the InnoDB ones are
    retried until the lock goes; the MyISAM ones, applied alone, are never part of a retried group."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, MYISAM)
    with source.connect("app") as conn, conn.cursor() as cur:
        for i in range(40):
            cur.execute(f"INSERT INTO m VALUES ({i}, 'row')")
            cur.execute(f"UPDATE users SET score = score + {i} WHERE id = 1")
            cur.execute(f"INSERT INTO events (user_id, kind) VALUES ({i % 3 + 1}, 'k{i}')")
    target.execute("SET GLOBAL innodb_lock_wait_timeout = 1")

    def locked(files: list[str], workers: int, mode: str) -> subprocess.Popen[str]:
        lock = _RowLock(target, "SELECT * FROM users WHERE id = 1 FOR UPDATE")
        proc = _start(target, files, backup, workers, mode)
        time.sleep(2.5)       # a few lock wait timeouts (1 s each) and retries
        lock.release()
        return proc

    _each_against_pipe(source, target, backup, locked)


@pytest.mark.parametrize("binlog_format", ["ROW", "STATEMENT"])
def test_a_failed_transaction_with_non_transactional_changes_stops_instead_of_retrying(
        clean_servers, tmp_path, binlog_format) -> None:
    """A transaction writing an InnoDB row, a MyISAM row, then an InnoDB row the target has locked: the
    MyISAM row is in when the lock wait times out, so a retry would write it twice: exit 4, naming the
    transaction and the table, with the MyISAM row there once and everything before it applied.
    (A ROW binlog logs MyISAM changes in groups of their own: there the table is MyISAM on the target
    only, which is what decides.)"""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE,
                     MYISAM if binlog_format == "STATEMENT" else MYISAM.replace("MyISAM", "InnoDB"))
    with source.connect("app") as conn, conn.cursor() as cur:
        cur.execute(f"SET SESSION binlog_format = '{binlog_format}'")
        cur.execute("UPDATE users SET score = 30 WHERE id = 3")
        cur.execute("BEGIN")
        cur.execute("UPDATE users SET score = 20 WHERE id = 2")
        cur.execute("INSERT INTO m VALUES (1, 'first')")
        cur.execute("UPDATE users SET score = score + 1 WHERE id = 1")
        cur.execute("COMMIT")
        cur.execute("UPDATE users SET name = 'after' WHERE id = 3")
    files = binlogs_from(source, backup.file)
    target.execute("SET GLOBAL innodb_lock_wait_timeout = 1")
    for mode in MODES:
        for workers in WORKERS:
            backup.restore(target)
            target.execute("ALTER TABLE app.m ENGINE=MyISAM")
            target.execute(f"DROP DATABASE IF EXISTS {PROGRESS_SCHEMA}")
            lock = _RowLock(target, "SELECT * FROM users WHERE id = 1 FOR UPDATE")
            try:
                proc = _start(target, files, backup, workers, mode, "--retries", "3")
                _, err = proc.communicate(timeout=300)
            finally:
                lock.release()
            label = f"--workers {workers} --apply {mode}: {err}"
            assert proc.returncode == ExitCode.TARGET, label
            errors = [line for line in err.splitlines() if line.startswith("binreplay: error: ")]
            assert len(errors) == 1 and "Traceback" not in err, label
            assert "writes " in errors[0] and "does not retry" in errors[0] and "1205" in errors[0], label
            assert "retrying" not in err, label
            if binlog_format == "ROW":
                assert "`app`.`m` (MyISAM)" in errors[0], label
            # Written once, not once per attempt; the InnoDB part rolled back; everything before it is in.
            assert target.execute("SELECT COUNT(*) FROM app.m")[0][0] == 1, label
            assert target.execute("SELECT id, score, name FROM app.users WHERE id IN (2, 3) ORDER BY id") == [
                (2, 2, "Bob"), (3, 30, "Cid")], label


# ---- class 7: temporary tables and the resume point --------------------------------------------

def _temporary_workload(source: Sandbox, binlog_format: str, spans: int = 3) -> None:
    """Two source sessions: one builds totals in temporary tables and writes them into real tables
    (STATEMENT/MIXED), the other changes rows meanwhile (ROW); each span ends with a DROP or with its
    session (the server then logs the DROP); one goes on in the next binlog file."""
    for span in range(spans):
        with source.connect("app") as a, source.connect("app") as b, a.cursor() as ca, b.cursor() as cb:
            ca.execute(f"SET SESSION binlog_format = '{binlog_format}'")
            ca.execute("CREATE TEMPORARY TABLE totals (user_id INT PRIMARY KEY, total INT)")
            cb.execute(f"INSERT INTO events (user_id, kind) VALUES (1, 'span{span}')")
            ca.execute("INSERT INTO totals SELECT user_id, COUNT(*) FROM events GROUP BY user_id")
            cb.execute(f"UPDATE users SET score = score + 1 WHERE id = {span % 3 + 1}")
            if span == 1:
                cb.execute("FLUSH BINARY LOGS")
            ca.execute("CREATE TEMPORARY TABLE seen (user_id INT)")
            ca.execute("BEGIN")
            ca.execute("UPDATE totals SET total = total * 10")
            ca.execute("INSERT INTO seen SELECT user_id FROM totals")
            ca.execute("COMMIT")
            cb.execute(f"INSERT INTO events (user_id, kind) VALUES (2, 'b{span}')")
            ca.execute("INSERT INTO ledger (user_id, total) SELECT user_id, total FROM totals")
            ca.execute("UPDATE users u JOIN totals t ON t.user_id = u.id SET u.score = u.score + t.total")
            ca.execute("DROP TEMPORARY TABLE seen")
            if span % 2:
                ca.execute("DROP TEMPORARY TABLE totals")
            cb.execute(f"INSERT INTO events (user_id, kind) VALUES (3, 'after{span}')")


@pytest.mark.parametrize("binlog_format", ["MIXED", "STATEMENT"])
def test_temporary_tables_survive_kills_inside_their_span(clean_servers, tmp_path, monkeypatch,
                                                          binlog_format) -> None:
    """kill -9 while the replay is inside a span with temporary tables open (between its statements, at a
    binlog rotation, before its commit, after a commit, in a checkpoint written each tick): the rerun ends
    exactly where the pipe does."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, LEDGER,
                     "INSERT INTO app.events (user_id, kind) VALUES (1, 'a'), (2, 'b'), (2, 'c')")
    _temporary_workload(source, binlog_format)
    exact_as_pipe(source, target, backup)
    monkeypatch.setenv("BINREPLAY_CHECKPOINT_INTERVAL", "0")   # a mark at every tick: inside spans too
    for crash_at in ("temporary-open:1", "temporary-open:4", "file-rotation:1", "before-commit:2", "after-commit:2",
                     "checkpoint:3"):
        exact_as_pipe(source, target, backup, crash_at=crash_at)


def test_a_lost_worker_session_restarts_the_span_from_its_create(clean_servers, tmp_path) -> None:
    """The worker session holding a temporary table is killed on the target (KILL CONNECTION) while a
    statement of the span waits for a row lock: the span is applied again from its CREATE in a new
    session, and the result is the pipe's."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, LEDGER)
    with source.connect("app") as a, a.cursor() as ca:
        ca.execute("SET SESSION binlog_format = 'MIXED'")
        ca.execute("CREATE TEMPORARY TABLE picked (id INT PRIMARY KEY)")
        ca.execute("INSERT INTO picked SELECT id FROM users WHERE score >= 2")
        ca.execute("UPDATE users SET score = score + 100 WHERE id = 1")
        ca.execute("INSERT INTO ledger (user_id, total) SELECT p.id, u.score FROM picked p JOIN users u USING (id)")
        ca.execute("DROP TEMPORARY TABLE picked")
        ca.execute("UPDATE users SET name = 'after' WHERE id = 3")
    target.execute("SET GLOBAL innodb_lock_wait_timeout = 60")

    def killed(files: list[str], workers: int, mode: str) -> subprocess.Popen[str]:
        lock = _RowLock(target, "SELECT * FROM users WHERE id = 1 FOR UPDATE")
        try:
            proc = _start(target, files, backup, workers, mode)
            worker = _waiting_on(target, "picked", proc)   # INSERT INTO picked SELECT ... FROM users
            target.execute(f"KILL CONNECTION {worker}")
        finally:
            lock.release()
        return proc

    _each_against_pipe(source, target, backup, killed)


def _waiting_on(target: Sandbox, marker: str, proc: subprocess.Popen[str], timeout: float = 30) -> int:
    """The id of the target session running a statement that names `marker` (it waits for a lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the replay ended before it reached the lock: {proc.communicate()[1][-3000:]}")
        rows = target.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                              f"AND INFO LIKE '%{marker}%'")
        if rows:
            return int(rows[0][0])
        time.sleep(0.05)
    sessions = target.execute("SELECT ID, STATE, LEFT(INFO, 200) FROM information_schema.PROCESSLIST")
    raise AssertionError(f"no worker session reached the locked row; the target's sessions: {sessions}")


def test_a_span_that_cannot_be_one_commit_is_replayed_in_pieces_with_a_warning(clean_servers, tmp_path) -> None:
    """ALTER TABLE of a temporary table commits implicitly: the span cannot be one commit. It is applied
    in several commits of the same session (the pipe's result), and the run says what an interruption
    inside it would cost."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, LEDGER)
    with source.connect("app") as a, a.cursor() as ca:
        ca.execute("SET SESSION binlog_format = 'MIXED'")
        ca.execute("CREATE TEMPORARY TABLE totals (user_id INT, total INT)")
        ca.execute("INSERT INTO totals SELECT id, score FROM users")
        ca.execute("ALTER TABLE totals ADD INDEX (user_id)")
        ca.execute("INSERT INTO ledger (user_id, total) SELECT user_id, total FROM totals")
    for outcome in exact_as_pipe(source, target, backup):
        err = outcome.runs[-1].stderr
        assert "`app`.`totals`" in err and "stay open across a statement that commits implicitly" in err, err


def test_a_lost_session_inside_a_cut_span_stops_with_a_clear_error(clean_servers, tmp_path) -> None:
    """In a span that could not be one commit (ALTER TABLE of the temporary table), the worker session
    holding the table is killed: a new session cannot continue the span, so the run stops with one line
    saying so (exit 4) instead of failing on a table that does not exist."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, LEDGER, "INSERT INTO app.ledger (user_id, total) VALUES (1, 0), (2, 0)")
    with source.connect("app") as a, a.cursor() as ca:
        ca.execute("SET SESSION binlog_format = 'STATEMENT'")
        ca.execute("CREATE TEMPORARY TABLE picked (id INT)")
        ca.execute("INSERT INTO picked VALUES (1), (2)")
        ca.execute("ALTER TABLE picked ADD INDEX (id)")
        ca.execute("UPDATE ledger SET total = total + 1 WHERE user_id IN (SELECT id FROM picked)")
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    target.execute("SET GLOBAL innodb_lock_wait_timeout = 60")
    lock = _RowLock(target, "SELECT * FROM ledger WHERE id = 2 FOR UPDATE")
    try:
        proc = _start(target, files, backup, 1, "binlog")
        target.execute(f"KILL CONNECTION {_waiting_on(target, 'IN (SELECT id FROM picked)', proc)}")
        _, err = proc.communicate(timeout=300)
    finally:
        lock.release()
    assert proc.returncode == ExitCode.TARGET, err
    errors = [line for line in err.splitlines() if line.startswith("binreplay: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "lost the target session holding the temporary tables" in errors[0], err
    assert "stay open across a statement that commits implicitly" in err, err


def _refused_inside_span(target: Sandbox, files: list[str], backup: Backup) -> None:
    """A rerun that would resume inside a cut span: one line, exit 6, nothing applied."""
    before = snapshot(target)
    rerun = _start(target, files, backup, 2, "binlog")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == ExitCode.STATE_CONFLICT, err
    errors = [line for line in err.splitlines() if line.startswith("binreplay: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "inside a span of the source where temporary tables opened at" in errors[0], err
    assert "restore the backup and replay again" in errors[0] and "--restart --target-restored" in errors[0], err
    assert snapshot(target) == before
    assert target.execute("SELECT user_id, total FROM app.ledger ORDER BY id") == [(1, 0), (2, 0)]


def test_a_rerun_from_inside_a_cut_span_refuses_instead_of_missing_its_temporary_tables(
        clean_servers, tmp_path, monkeypatch) -> None:
    """kill -9 between the commits of a span that could not be one commit (ALTER TABLE of its temporary
    table): the temporary tables went with the killed process, so the rerun refuses, saying what to do,
    instead of failing on a table that does not exist (or writing a base table of that name)."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, LEDGER, "INSERT INTO app.ledger (user_id, total) VALUES (1, 0), (2, 0)")
    with source.connect("app") as a, a.cursor() as ca:
        ca.execute("SET SESSION binlog_format = 'STATEMENT'")
        ca.execute("CREATE TEMPORARY TABLE picked (id INT)")
        ca.execute("INSERT INTO picked VALUES (1), (2)")
        ca.execute("ALTER TABLE picked ADD INDEX (id)")
        ca.execute("UPDATE ledger SET total = total + 1 WHERE user_id IN (SELECT id FROM picked)")
        ca.execute("DROP TEMPORARY TABLE picked")
        ca.execute("UPDATE ledger SET total = total + 10")
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    monkeypatch.setenv("BINREPLAY_CRASH_AT", "after-commit:1")   # the CREATE and INSERT committed, no more
    proc = _start(target, files, backup, 2, "binlog")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -9, err
    monkeypatch.delenv("BINREPLAY_CRASH_AT")
    _refused_inside_span(target, files, backup)


def test_a_run_that_ended_inside_a_span_refuses_to_go_on_without_its_temporary_tables(
        clean_servers, tmp_path) -> None:
    """The binlogs end while a session holds a temporary table: the run applies what it has (with a
    warning) and its mark records that the tables stay open; a later run with more binlogs refuses to go
    on from there in new sessions."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, LEDGER, "INSERT INTO app.ledger (user_id, total) VALUES (1, 0), (2, 0)")
    with source.connect("app") as a, a.cursor() as ca:
        ca.execute("SET SESSION binlog_format = 'STATEMENT'")
        ca.execute("CREATE TEMPORARY TABLE picked (id INT)")
        ca.execute("INSERT INTO picked VALUES (1), (2)")
        files = binlogs_from(source, backup.file)
        backup.restore(target)
        first = _start(target, files, backup, 2, "binlog")
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0 and "end of the input" in err, err
        ca.execute("UPDATE ledger SET total = total + 1 WHERE user_id IN (SELECT id FROM picked)")
        ca.execute("DROP TEMPORARY TABLE picked")
    _refused_inside_span(target, binlogs_from(source, backup.file), backup)


@pytest.mark.parametrize("workers", [1, 4])
def test_a_source_crash_ends_the_spans_of_its_sessions(clean_servers, tmp_path, workers) -> None:
    """The source is killed while a session holds a temporary table (no DROP is logged) and comes back:
    its next binlog begins with a FORMAT_DESCRIPTION that has a creation time, which ends the span (as a
    replica closes its temporary tables there). What follows is not held in the span, and a new session
    creating a temporary table of the same name meets none left in the worker's session."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, LEDGER)
    crashed = source.connect("app")
    crashed_id = crashed.thread_id()
    with crashed.cursor() as ca:
        ca.execute("SET SESSION binlog_format = 'STATEMENT'")
        ca.execute("CREATE TEMPORARY TABLE totals (user_id INT, total INT)")
        ca.execute("INSERT INTO totals SELECT id, score FROM users")
        ca.execute("INSERT INTO ledger (user_id, total) SELECT user_id, total FROM totals")
    source.kill()
    source.start()
    # Thread ids start again: the next session gets the crashed one's id (and so the same key of its
    # temporary tables in a target session, where they are told apart by pseudo-thread id).
    while True:
        b = source.connect("app")
        thread_id = b.thread_id()
        if thread_id >= crashed_id:
            break
        b.close()
    assert thread_id == crashed_id
    with b, b.cursor() as cb:
        cb.execute("SET SESSION binlog_format = 'STATEMENT'")
        cb.execute("CREATE TEMPORARY TABLE totals (user_id INT, total INT)")
        cb.execute("INSERT INTO totals VALUES (7, 70)")
        cb.execute("INSERT INTO ledger (user_id, total) SELECT user_id, total FROM totals")
        cb.execute("DROP TEMPORARY TABLE totals")
    for i in range(5):
        source.execute(f"UPDATE app.users SET score = score + {i} WHERE id = {i % 3 + 1}")
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    proc = _start(target, files, backup, workers, "binlog")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "stay open across" not in err, err
    for query in ("SELECT user_id, total FROM app.ledger ORDER BY id", "SELECT * FROM app.users ORDER BY id"):
        assert target.execute(query) == source.execute(query)


def test_progress_tables_of_an_older_binreplay_gain_the_temporary_open_column(clean_servers, tmp_path) -> None:
    """Progress tables written before `temporary_open` existed are upgraded when a run resumes them."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, *BASE, LEDGER)
    source.execute("INSERT INTO app.ledger (user_id, total) VALUES (1, 1)")
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    first = _start(target, files, backup, 1, "binlog")
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    for table in ("applied", "checkpoint"):
        target.execute(f"ALTER TABLE {PROGRESS_SCHEMA}.{table} DROP COLUMN temporary_open")
    source.execute("INSERT INTO app.ledger (user_id, total) VALUES (2, 2)")
    rerun = _start(target, binlogs_from(source, backup.file), backup, 1, "binlog")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert target.execute("SELECT user_id, total FROM app.ledger ORDER BY id") == [(1, 1), (2, 2)]
    assert target.execute("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s "
                          "AND COLUMN_NAME='temporary_open'", PROGRESS_SCHEMA) == [(2,)]
