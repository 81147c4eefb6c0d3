"""Statements that commit implicitly, replayed exactly as `mariadb-binlog | mariadb` does: after a kill -9
or a lost connection between such a statement and its record (the DDL journal must tell any DDL
apart: table swaps, accounts, events), CREATE TABLE ... SELECT (its CREATE commits on its own, its
rows must be atomic with their record), and a table redefined by a transaction that is no plain DDL
(the keys must learn its new UNIQUE key). Each is compared with the pipe by content at 1 and 8
workers in both apply modes (pipe_reference.exact_as_pipe)."""

from __future__ import annotations

import pytest
from pipe_reference import binreplay_replay, exact_as_pipe, pipe_replay, take_backup

from helpers import binlogs_from, run_binreplay
from replays import ok, one_line_error, run_on, summary_of

TWO_TABLES = ("CREATE DATABASE app",
              "CREATE TABLE app.a (id INT PRIMARY KEY, v VARCHAR(20))",
              "CREATE TABLE app.b (id INT PRIMARY KEY, v VARCHAR(20))",
              "INSERT INTO app.a VALUES (1, 'was a')",
              "INSERT INTO app.b VALUES (1, 'was b')")

# Statements whose repetition the old schema digest could not see (the same definitions after them),
# and the crash point right after the swap ran.
SWAPS = {
    "rename-swap": (["RENAME TABLE app.a TO app.t, app.b TO app.a, app.t TO app.b"], "ddl-executed:1"),
    "exchange-partition": (["CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(20)) PARTITION BY RANGE (id) "
                            "(PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN MAXVALUE)",
                            "INSERT INTO app.p VALUES (2, 'was p0')",
                            "ALTER TABLE app.p EXCHANGE PARTITION p0 WITH TABLE app.a"], "ddl-executed:2"),
}
AFTER_SWAP = ["INSERT INTO app.a VALUES (10, 'after')", "INSERT INTO app.b VALUES (20, 'after')",
              "UPDATE app.a SET v = CONCAT(v, '+') WHERE id = 1"]


def _backup_then(source, tmp_path, setup: tuple[str, ...], workload: list[str]):
    for sql in setup:
        source.execute(sql)
    backup = take_backup(source, ["app"], tmp_path / "backup.sql")
    run_on(source, workload)
    return backup


@pytest.mark.parametrize("case", sorted(SWAPS))
def test_swap_interrupted_after_it_ran(clean_servers, tmp_path, case: str) -> None:
    """Killed between the swap and its record: the rerun must see that it ran (table identities)."""
    source, target = clean_servers
    workload, point = SWAPS[case]
    backup = _backup_then(source, tmp_path, TWO_TABLES, workload + AFTER_SWAP)
    exact_as_pipe(source, target, backup, crash_at=point)


def test_swap_connection_lost_after_it_ran(clean_servers, tmp_path, monkeypatch) -> None:
    """The worker's session is ended by the server right after the swap ran, before its record: the
    retry must not run it again."""
    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES, SWAPS["rename-swap"][0] + AFTER_SWAP)
    monkeypatch.setenv("BINREPLAY_DISCONNECT_AT", "ddl-executed:1")
    outcomes = exact_as_pipe(source, target, backup)
    assert all("had taken effect" in o.runs[-1].stderr for o in outcomes), outcomes[0].runs[-1].stderr


ACCOUNTS = ["CREATE USER 'replayed_u'@'%' IDENTIFIED BY 'secret'",
            "CREATE ROLE replayed_role",
            "GRANT SELECT ON app.* TO replayed_role",
            "GRANT replayed_role TO 'replayed_u'@'%'",
            "CREATE EVENT app.nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM app.a WHERE id < 0",
            "CREATE PROCEDURE app.touch() UPDATE app.a SET v = v",
            "INSERT INTO app.a VALUES (30, 'after accounts')"]


@pytest.mark.parametrize("point", ["ddl-executed:1", "ddl-executed:2", "ddl-executed:5"])
def test_statement_outside_table_schemas_interrupted(clean_servers, tmp_path, point: str) -> None:
    """CREATE USER / CREATE ROLE / CREATE EVENT killed before their record: a rerun must not run them
    again (1396, 1537 forever)."""
    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES, ACCOUNTS)
    exact_as_pipe(source, target, backup, crash_at=point)


CTAS = ["CREATE TABLE app.c (id INT PRIMARY KEY, v VARCHAR(20)) SELECT id, v FROM app.a",
        "INSERT INTO app.c VALUES (40, 'after ctas')",
        "CREATE TABLE app.empty_ctas SELECT id FROM app.a WHERE id < 0",
        "INSERT INTO app.a VALUES (41, 'after empty ctas')"]


@pytest.mark.parametrize("point", ["ddl-started:1", "ddl-executed:1", "before-commit:1", "ddl-executed:2"])
def test_create_select_interrupted(clean_servers, tmp_path, point: str) -> None:
    """CREATE TABLE ... SELECT killed before its CREATE, between the CREATE and its rows, before the
    rows' COMMIT, or after an empty SELECT's CREATE: the rerun leaves the table with its rows once."""
    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES + ("INSERT INTO app.a VALUES (2, 'two'), (3, 'three')",),
                          CTAS)
    exact_as_pipe(source, target, backup, crash_at=point)


def test_create_select_into_myisam_interrupted_before_its_record(clean_servers, tmp_path) -> None:
    """A MyISAM CREATE TABLE ... SELECT killed after its rows, before their record: the rows stay (no
    rollback), and the rerun must not add them again (1062 forever otherwise)."""
    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES + ("INSERT INTO app.a VALUES (2, 'two'), (3, 'three')",),
                          ["CREATE TABLE app.m (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM "
                           "SELECT id, v FROM app.a", "INSERT INTO app.m VALUES (50, 'after')"])
    exact_as_pipe(source, target, backup, crash_at="before-commit:1")


def test_redefined_by_create_or_replace_select(clean_servers, tmp_path) -> None:
    """CREATE OR REPLACE TABLE ... SELECT adds a UNIQUE key: later transactions must be keyed by it, so
    an INSERT taking a value never overtakes the (long) transaction whose UPDATE frees it (1062)."""
    source, target = clean_servers
    pairs = 12
    # (wide rows: keyed by the table, cheap for the coordinator, long for the target)
    setup = TWO_TABLES + ("CREATE TABLE app.big (id INT PRIMARY KEY, n INT, pad CHAR(200) NOT NULL DEFAULT 'x')",
                          "INSERT INTO app.big (id, n) SELECT seq, 0 FROM app.seq_1_to_3000")
    workload = ["INSERT INTO app.a VALUES (2, 'before')"]   # the keys have read app.a's old definition
    workload += [f"INSERT INTO app.b VALUES ({i}, 'v{i}')" for i in range(3, pairs + 3)]
    workload += ["CREATE OR REPLACE TABLE app.a (id INT PRIMARY KEY, v VARCHAR(20), UNIQUE KEY (v)) "
                 "SELECT id, v FROM app.b WHERE id > 1"]
    for i in range(3, pairs + 3):
        workload += ["BEGIN", "UPDATE app.big SET n = n + 1", f"UPDATE app.a SET v = 'moved{i}' WHERE id = {i}",
                     "COMMIT", f"INSERT INTO app.a VALUES ({i + 1000}, 'v{i}')"]
    backup = _backup_then(source, tmp_path, setup, workload)
    exact_as_pipe(source, target, backup, "--no-group-commit", workers=(8,))


def test_engine_changed_by_create_or_replace_select(clean_servers, tmp_path) -> None:
    """CREATE OR REPLACE TABLE ... SELECT makes the table MyISAM: the run must know it (its transactions
    are applied alone, not retried, and named in a warning), not go on with the InnoDB table it read
    before."""
    source, target = clean_servers
    workload = ["INSERT INTO app.a VALUES (2, 'before')",   # the run reads app.a's definition here
                "CREATE OR REPLACE TABLE app.a (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM "
                "SELECT id, v FROM app.b"]
    workload += [f"INSERT INTO app.a VALUES ({i}, 'after')" for i in range(10, 20)]
    backup = _backup_then(source, tmp_path, TWO_TABLES, workload)
    for outcome in exact_as_pipe(source, target, backup):
        assert "table `app`.`a` uses MyISAM" in outcome.runs[-1].stderr, outcome.runs[-1].stderr


def test_stop_position_inside_create_select(clean_servers, tmp_path) -> None:
    """--stop-position between a CREATE TABLE ... SELECT's rows and its COMMIT: the pipe keeps the table
    and its rows (they commit implicitly); binreplay applies the group whole or not at all, and its
    summary says what the pipe would have kept."""
    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES, [])
    run_on(source, ["INSERT INTO app.a VALUES (2, 'two')"])
    _file, ctas_start = source.master_status()
    run_on(source, [CTAS[0]])
    files = binlogs_from(source, backup.file)[:1]   # the backup's file holds the CREATE TABLE ... SELECT
    stop = ["--stop-position", str(_xid_position(files[0], ctas_start))]

    backup.restore(target)
    pipe_replay(target, files, backup.pos, *stop)
    assert target.execute("SELECT COUNT(*) FROM app.c") == [(2,)]   # what the pipe kept

    backup.restore(target)
    target.execute("DROP DATABASE IF EXISTS binreplay")
    run = binreplay_replay(target, files, backup.pos, 1, "binlog", *stop, "--progress", "json").runs[-1]
    ok(run)
    reason = summary_of(run)["stop_reason"]
    assert "falls inside the transaction" in reason and "it was not applied" in reason, reason
    assert "would have kept its statement 'CREATE TABLE `c`" in reason, reason
    assert "the rows of 1 row statement(s) after it" in reason, reason
    assert target.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='app' "
                          "AND TABLE_NAME='c'") == [(0,)]
    assert target.execute("SELECT COUNT(*) FROM app.a") == [(2,)]


def test_stop_position_inside_a_myisam_transaction(clean_servers, tmp_path) -> None:
    """--stop-position between a MyISAM transaction's rows and its COMMIT (MariaDB logs each statement
    on a non-transactional table as a group of its own): the pipe keeps the rows (its ROLLBACK cannot
    undo them); binreplay applies none, and says what the pipe kept."""
    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES + ("CREATE TABLE app.m (id INT PRIMARY KEY) ENGINE=MyISAM",),
                          [])
    _file, group_start = source.master_status()
    run_on(source, ["BEGIN", "INSERT INTO app.m VALUES (1), (2)", "COMMIT"])
    files = binlogs_from(source, backup.file)[:1]
    commit_at = _group(files[0], group_start).events[-1].start
    stop = ["--stop-position", str(commit_at)]

    backup.restore(target)
    pipe_replay(target, files, backup.pos, *stop)
    assert target.execute("SELECT id FROM app.m ORDER BY id") == [(1,), (2,)]   # what the pipe kept

    backup.restore(target)
    target.execute("DROP DATABASE IF EXISTS binreplay")
    run = binreplay_replay(target, files, backup.pos, 1, "binlog", *stop, "--progress", "json").runs[-1]
    ok(run)
    reason = summary_of(run)["stop_reason"]
    assert ("would have kept the changes of its 1 row statement(s) before it to `app`.`m`, which cannot roll back"
            in reason), reason
    assert target.execute("SELECT id FROM app.m") == []


def _group(path: str, group_start: int):
    """The transaction that starts at `group_start` in the binlog `path`."""
    from pathlib import Path

    from binreplay.source.reader import BinlogReader

    for trx in BinlogReader([Path(path)]).transactions():
        if trx.start_pos == group_start:
            return trx
    raise AssertionError(f"no transaction starts at {group_start} in {path}")


def _xid_position(path: str, group_start: int) -> int:
    """Where the XID event that ends the group starting at `group_start` starts."""
    from binreplay.binlog import constants as C

    return next(ev.start for ev in _group(path, group_start).events if ev.type_code == C.XID_EVENT)


def test_killed_while_the_target_still_runs_the_ddl(clean_servers, tmp_path) -> None:
    """kill -9 while the target executes a long ALTER: the server finishes it (it does not notice its
    client is gone), so the rerun must wait for that session before it decides whether the ALTER ran
    (else it runs it again: duplicate column)."""
    import signal
    import subprocess
    import sys
    import time

    from pipe_reference import PROGRESS_SCHEMA, differences, snapshot

    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES + (
        "CREATE TABLE app.big (id INT PRIMARY KEY, pad CHAR(100) NOT NULL DEFAULT 'x')",
        "INSERT INTO app.big (id) SELECT seq FROM app.seq_1_to_300000"),
        ["ALTER TABLE app.big ADD COLUMN z INT NOT NULL DEFAULT 5, ALGORITHM=COPY",
         "INSERT INTO app.big (id, z) VALUES (0, 6)"])
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    pipe_replay(target, files, backup.pos)
    reference = snapshot(target)

    backup.restore(target)
    target.execute(f"DROP DATABASE IF EXISTS {PROGRESS_SCHEMA}")
    args = [sys.executable, "-m", "binreplay", "replay", *files, *target.connection_flags(),
            "--start-position", str(backup.pos), "--progress", "none"]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not target.execute("SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE%big%'"):
        assert first.poll() is None and time.monotonic() < deadline, "the ALTER never ran on the target"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert target.execute("SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE%big%'"), \
        "the ALTER ended before the rerun: make it longer"
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300)
    ok(rerun)
    assert "is still running; waiting for it to finish" in rerun.stderr, rerun.stderr
    assert not differences(reference, snapshot(target))


PARENT_CHILD = TWO_TABLES + ("CREATE TABLE app.p (id INT PRIMARY KEY)",
                             "CREATE TABLE app.ch (id INT PRIMARY KEY, pid INT, KEY (pid))",
                             "INSERT INTO app.p VALUES (1), (2)",
                             "INSERT INTO app.ch VALUES (1, 1), (2, 3)")


def test_foreign_key_added_without_checks_interrupted_after_it_ran(clean_servers, tmp_path) -> None:
    """ADD FOREIGN KEY under foreign_key_checks=0 runs in place (same InnoDB table id, the index was there):
    killed before its record, the rerun must see it ran (foreign keys in the digest), not add ch_ibfk_2."""
    source, target = clean_servers
    backup = _backup_then(source, tmp_path, PARENT_CHILD,
                          ["SET SESSION foreign_key_checks = 0",
                           "ALTER TABLE app.ch ADD FOREIGN KEY (pid) REFERENCES app.p (id)",
                           "SET SESSION foreign_key_checks = 1",
                           "INSERT INTO app.a VALUES (60, 'after fk')"])
    exact_as_pipe(source, target, backup, crash_at="ddl-executed:1")


def _restart_target_after_the_crash(target, monkeypatch) -> None:
    """exact_as_pipe's crashed first run is followed by a clean restart of the target (its MEMORY tables
    empty, connection ids start again) before the rerun."""
    import pipe_reference

    crashed_run = pipe_reference.run_binreplay

    def run(*args: str, env: dict[str, str] | None = None, **kw):
        result = crashed_run(*args, env=env, **kw)
        if env and "BINREPLAY_CRASH_AT" in env:
            target.stop()
            target.start()
        return result

    monkeypatch.setattr(pipe_reference, "run_binreplay", run)


def test_ddl_interrupted_before_it_ran_then_target_restarted(clean_servers, tmp_path, monkeypatch) -> None:
    """Killed at `ddl-started` (the ALTER never ran), then the target restarts, which empties its MEMORY
    table: the rerun must still see that the ALTER did not run (no table content in the digest) and run it.
    The MEMORY table is emptied by a statement-format DELETE after it, so the pipe ends the same."""
    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES + (
        "CREATE TABLE app.m (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MEMORY",
        "INSERT INTO app.m VALUES (1, 'kept'), (2, 'kept')"),
        ["INSERT INTO app.m VALUES (3, 'replayed')",
         "ALTER TABLE app.a ADD COLUMN w INT NOT NULL DEFAULT 7",
         "SET SESSION binlog_format = 'STATEMENT'",
         "DELETE FROM app.m",
         "SET SESSION binlog_format = 'ROW'",
         "INSERT INTO app.a VALUES (70, 'after', 8)"])
    _restart_target_after_the_crash(target, monkeypatch)
    outcomes = exact_as_pipe(source, target, backup, crash_at="ddl-started:1")
    assert all("had not taken effect" in o.runs[-1].stderr for o in outcomes), outcomes[0].runs[-1].stderr


def test_rerun_does_not_wait_for_another_session_with_the_journaled_id(clean_servers, tmp_path) -> None:
    """After a restart connection ids start again: the journal's id may be an unrelated busy session's
    (here a client's long SELECT). The rerun must not wait for it: only for that id running the statement."""
    import contextlib
    import threading
    import time

    import pymysql
    from pipe_reference import PROGRESS_SCHEMA

    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES, ["ALTER TABLE app.a ADD COLUMN w INT NOT NULL DEFAULT 7",
                                                        "INSERT INTO app.a VALUES (80, 'after', 9)"])
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    target.execute(f"DROP DATABASE IF EXISTS {PROGRESS_SCHEMA}")
    args = ["replay", *files, *target.connection_flags(), "--start-position", str(backup.pos), "--progress", "none"]
    assert run_binreplay(*args, env={"BINREPLAY_CRASH_AT": "ddl-started:1"}).returncode == -9
    other = target.connect()
    other_id = other.thread_id()

    def sleep() -> None:
        with contextlib.suppress(pymysql.err.MySQLError):   # 1317 once KILL QUERY ends it
            other.cursor().execute("SELECT SLEEP(30)")

    sleeper = threading.Thread(target=sleep, daemon=True)
    sleeper.start()
    try:
        while not target.execute("SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = %s AND INFO LIKE "
                                 "'SELECT SLEEP%%'", other_id):
            time.sleep(0.02)
        target.execute(f"UPDATE {PROGRESS_SCHEMA}.ddl_journal SET connection_id = %s WHERE state = 'started'",
                       other_id)
        began = time.monotonic()
        rerun = run_binreplay(*args)
        took = time.monotonic() - began
    finally:
        target.execute(f"KILL QUERY {other_id}")
        sleeper.join()
        other.close()
    ok(rerun)
    assert "is still running" not in rerun.stderr and took < 20, (took, rerun.stderr)
    assert target.execute("SELECT id, w FROM app.a ORDER BY id") == [(1, 7), (80, 9)]


def test_unreadable_digest_parts_refuse_to_guess(clean_servers, tmp_path) -> None:
    """A replay user without PROCESS and SELECT on mysql cannot read InnoDB's table ids nor the accounts:
    after a kill before the DDL ran, unchanged digests prove nothing (a RENAME swap, a CREATE USER would
    leave them so): the rerun refuses in one line (exit 7) instead of guessing; after a kill once the
    DDL ran, a changed definition proves it ran."""
    from pipe_reference import PROGRESS_SCHEMA

    from binreplay.errors import ExitCode

    source, target = clean_servers
    backup = _backup_then(source, tmp_path, TWO_TABLES, ["ALTER TABLE app.a ADD COLUMN w INT NOT NULL DEFAULT 7",
                                                        "INSERT INTO app.a VALUES (80, 'after', 9)"])
    files = binlogs_from(source, backup.file)
    target.execute("CREATE USER 'limited'@'localhost' IDENTIFIED BY 'pw'")
    try:
        for grant in ("ALL ON app.*", f"ALL ON {PROGRESS_SCHEMA}.*", "BINLOG REPLAY ON *.*"):
            target.execute(f"GRANT {grant} TO 'limited'@'localhost'")
        args = ["replay", *files, "-S", str(target.socket), "-u", "limited", "--start-position", str(backup.pos),
                "--progress", "none"]
        env = {"MYSQL_PWD": "pw"}
        for point, refused in (("ddl-started:1", True), ("ddl-executed:1", False)):
            backup.restore(target)
            target.execute(f"DROP DATABASE IF EXISTS {PROGRESS_SCHEMA}")
            first = run_binreplay(*args, env={**env, "BINREPLAY_CRASH_AT": point})
            assert first.returncode == -9, first.stderr
            rerun = run_binreplay(*args, env=env)
            if refused:
                one_line_error(rerun, ExitCode.UNSUPPORTED, "cannot tell whether the statement at", "PROCESS",
                               "check by hand")
                assert target.execute("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='app' "
                                      "AND TABLE_NAME='a' AND COLUMN_NAME='w'") == [(0,)]
            else:
                ok(rerun)
                assert target.execute("SELECT id, w FROM app.a ORDER BY id") == [(1, 7), (80, 9)]
    finally:
        target.execute("DROP USER 'limited'@'localhost'")
