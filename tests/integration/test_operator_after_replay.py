"""What the DBA needs once the replay is done (issue 14, item 11): the position to attach the target
as a replica (tested by attaching it), replayed transactions kept out of the target's binlog or
in it (--target-binlog), and `binreplay forget` to remove the progress records."""

from __future__ import annotations

import json
import time

import pymysql

from binreplay.errors import ExitCode

from helpers import assert_same_content, binlogs_from, run_binreplay, snapshot_to_target
from replays import BASE, ok, run_on, setup_backup, summary_of, users_on


def _replayed(clean_servers, *extra: str):
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('n{i}', 'x', {i})" for i in range(5)])
    run_on(source, ["UPDATE app.users SET score = score + 1 WHERE id = 1"])
    files = binlogs_from(source, start[0])
    result = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]), *extra)
    return source, target, start, files, result


def _wait_for(target, source_pos: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.execute("SELECT @@gtid_slave_pos")[0][0] == source_pos:
            return
        time.sleep(0.2)
    status = target.execute("SHOW SLAVE STATUS")
    raise AssertionError(f"the replica did not reach {source_pos}: {status}")


def test_the_replica_position_is_printed_and_attaching_there_loses_and_repeats_nothing(clean_servers) -> None:
    source, target, _start, files, text = _replayed(clean_servers, "--progress", "plain")
    ok(text)
    source_pos = source.execute("SELECT @@gtid_binlog_pos")[0][0]
    lines = [line for line in text.stderr.splitlines() if "to attach the target as a replica" in line]
    assert lines == [f"binreplay: to attach the target as a replica of the source: SET GLOBAL gtid_slave_pos = "
                     f"'{source_pos}'; CHANGE MASTER TO MASTER_HOST='<source>', MASTER_USER='<user>', "
                     "MASTER_PASSWORD='<password>', MASTER_USE_GTID=slave_pos"], text.stderr

    # The same in the JSON summary (a rerun has nothing to apply and says the same position).
    again = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(_start[1]),
                          "--progress", "json")
    ok(again)
    replica = summary_of(again)["replica"]
    assert replica["flavor"] == "mariadb" and replica["gtid_state"] == source_pos
    assert f"{replica['binlog_file']}:{replica['position']}" == summary_of(again)["low_water"]
    assert replica["statements"][0] == f"SET GLOBAL gtid_slave_pos = '{source_pos}'"

    # Attached there, the target receives what the source does next, and nothing twice.
    run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('later', 'x', 9)",
                    "UPDATE app.users SET score = 100 WHERE email = 'n3'"])
    try:
        target.execute(replica["statements"][0])
        target.execute(replica["statements"][1].replace("MASTER_HOST='<source>'", f"MASTER_HOST='127.0.0.1', "
                                                        f"MASTER_PORT={source.port}")
                       .replace("'<user>'", "'root'").replace("'<password>'", "''"))
        target.execute("START SLAVE")
        _wait_for(target, source.execute("SELECT @@gtid_binlog_pos")[0][0])
        assert_same_content(source, target, ["app"])
    finally:
        target.execute("STOP SLAVE")
        target.execute("RESET SLAVE ALL")
        target.execute("SET GLOBAL gtid_slave_pos = ''")


def test_target_binlog_off_keeps_replayed_transactions_out_of_it(clean_servers, tmp_path) -> None:
    from binreplay.devtools.sandbox import create_sandbox

    source, _ = clean_servers
    with create_sandbox(tmp_path / "tb", name="tb", server_id=7, log_bin=True, die_with_parent=True) as target:
        start = setup_backup(source, target, *BASE)
        run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('b{i}', 'x', {i})" for i in range(4)])
        files = binlogs_from(source, start[0])
        before = target.execute("SELECT @@gtid_binlog_pos")[0][0]
        args = ("replay", *files, *target.connection_flags(), "--start-position", str(start[1]), "--progress", "json")

        off = run_binreplay(*args, "--target-binlog", "off")
        ok(off)
        (record,) = [json.loads(line) for line in off.stderr.splitlines() if '"type": "start"' in line]
        assert record["log_bin"] is True and record["target_binlog"] == "off"
        assert target.execute("SELECT @@gtid_binlog_pos")[0][0] == before   # nothing logged, not even progress
        assert_same_content(source, target, ["app"])
        forgotten = run_binreplay("forget", *target.connection_flags(), "--target-binlog", "off")
        ok(forgotten)
        assert target.execute("SELECT @@gtid_binlog_pos")[0][0] == before

        # The default (what binreplay always did): the target's binlog gets the replayed transactions.
        target.execute("DROP DATABASE app")
        start = snapshot_to_target(source, target, ["app"])   # restored again (from the source as it is now)
        run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('c{i}', 'x', {i})" for i in range(3)])
        files = binlogs_from(source, start[0])
        restored = target.execute("SELECT @@gtid_binlog_pos")[0][0]
        plain = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                              "--progress", "plain")
        ok(plain)
        assert "binlog on: replayed transactions are logged" in plain.stderr
        assert target.execute("SELECT @@gtid_binlog_pos")[0][0] != restored
        assert_same_content(source, target, ["app"])


def test_forget_removes_the_progress_records_and_says_what(clean_servers) -> None:
    source, target, start, files, result = _replayed(clean_servers, "--progress", "json")
    ok(result)
    mark = summary_of(result)["low_water"]

    # Refused while a replay holds the run lock (another session holds it here).
    with pymysql.connect(unix_socket=str(target.socket), user="root") as holder:
        with holder.cursor() as cur:
            cur.execute("SELECT GET_LOCK('binreplay:binreplay', 0)")
        busy = run_binreplay("forget", *target.connection_flags())
        assert busy.returncode == ExitCode.STATE_CONFLICT, busy.stderr
        assert "a replay into this target is running now" in busy.stderr and "not removed" in busy.stderr
        assert "Traceback" not in busy.stderr
    assert target.execute("SHOW DATABASES LIKE 'binreplay'")

    removed = run_binreplay("forget", *target.connection_flags())
    ok(removed)
    assert removed.stdout.strip() == ("binreplay: removed the progress schema `binreplay` (tables: applied, "
                                      f"checkpoint, ddl_journal, runs); its last run 1 was complete up to {mark}")
    assert not target.execute("SHOW DATABASES LIKE 'binreplay'")
    assert users_on(target) == 8                                   # the data stays
    again = run_binreplay("forget", *target.connection_flags(), "--format", "json")
    ok(again)
    assert json.loads(again.stdout) == {"schema": "binreplay", "removed": False, "tables": [], "last_run": None,
                                        "last_state": None, "low_water_mark": None}


def test_forget_keeps_the_records_of_a_run_that_can_still_be_resumed(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('f1', 'x', 1)"])
    files = binlogs_from(source, start[0])
    target.execute("DROP TABLE app.users")   # the replay fails on it (exit 9): a run that is not complete
    failed = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                           "--progress", "none")
    assert failed.returncode == ExitCode.SCHEMA_MISMATCH, failed.stderr

    kept = run_binreplay("forget", *target.connection_flags())
    assert kept.returncode == ExitCode.STATE_CONFLICT, kept.stderr
    assert "the last run (1) is failed" in kept.stderr and "--force" in kept.stderr
    assert target.execute("SHOW DATABASES LIKE 'binreplay'")
    forced = run_binreplay("forget", *target.connection_flags(), "--force")
    ok(forced)
    assert "its last run 1 was failed" in forced.stdout
    assert not target.execute("SHOW DATABASES LIKE 'binreplay'")
    # A schema of that name with other tables is not binreplay's alone: never dropped.
    target.execute("CREATE DATABASE binreplay")
    target.execute("CREATE TABLE binreplay.mine (id INT)")
    mine = run_binreplay("forget", *target.connection_flags(), "--force")
    assert mine.returncode == ExitCode.STATE_CONFLICT and "(mine): not dropped" in mine.stderr, mine.stderr
    assert target.execute("SELECT COUNT(*) FROM binreplay.mine")[0][0] == 0
