"""End to end: real source and target servers, a backup, a workload, a replay, a content comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import (
    assert_same_content,
    binlogs_from,
    replay_into,
    run_binreplay,
)
from replays import BASE, ok, run_on, setup_backup, summary_of


def test_dml_over_several_tables_and_files(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    stmts = []
    for i in range(200):
        stmts.append(f"INSERT INTO app.users (email, name, score) VALUES ('u{i}@x', 'n{i}', {i})")
        stmts.append(f"INSERT INTO app.events (user_id, kind, at) VALUES ({i % 7 + 1}, 'k{i % 3}', NOW(6))")
        if i % 10 == 0:
            stmts.append(f"UPDATE app.users SET score = score + 1 WHERE id % 5 = {i % 5}")
        if i % 17 == 0:
            stmts.append(f"DELETE FROM app.events WHERE id % 11 = {i % 11}")
        if i % 70 == 69:
            stmts.append("FLUSH BINARY LOGS")
    run_on(source, stmts)
    result = replay_into(source, target, start)
    ok(result)
    s = summary_of(result)
    assert s["outcome"] == "complete" and s["applied"] > 400
    assert_same_content(source, target)
    # A rerun with the same arguments has nothing left to do and applies nothing twice.
    again = replay_into(source, target, start)
    ok(again)
    assert summary_of(again)["applied"] == 0
    assert_same_content(source, target)


def test_ddl_between_dml(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [
        "INSERT INTO app.users (email, name, score) VALUES ('d@x','Dee',4)",
        "ALTER TABLE app.users ADD COLUMN city VARCHAR(40) NULL AFTER name, ADD INDEX (score)",
        "UPDATE app.users SET city = 'Oslo' WHERE id <= 2",
        "CREATE TABLE app.tmp_copy LIKE app.users",
        "INSERT INTO app.tmp_copy SELECT * FROM app.users",
        "RENAME TABLE app.events TO app.events_old",
        "CREATE TABLE app.events (id BIGINT PRIMARY KEY, note TEXT)",
        "INSERT INTO app.events VALUES (1, 'after rename')",
        "DROP TABLE app.events_old",
        "ALTER TABLE app.tmp_copy DROP COLUMN score",
        "CREATE DATABASE app2",
        "CREATE TABLE app2.t (a INT PRIMARY KEY) ",
        "INSERT INTO app2.t VALUES (1),(2)",
        "CREATE VIEW app.v AS SELECT id, name FROM app.users",
        "DROP DATABASE app2",
    ])
    ok(replay_into(source, target, start))
    assert_same_content(source, target)


def test_statement_and_mixed_format_with_context(clean_servers) -> None:
    """INTVAR, RAND, USER_VAR, NOW(), session variables and temporary tables in statement format."""
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [
        "SET @v_text = _latin1 'café', @v_int = -42, @v_dec = 12.345, @v_real = 0.1, @v_null = NULL",
        "SET @v_big = 18446744073709551615",
        "INSERT INTO app.users (email, name, score) VALUES (CONCAT('sv', @v_int), @v_text, @v_int)",
        "INSERT INTO app.users (email, name, score) VALUES ('rand', CAST(FLOOR(RAND()*1000000) AS CHAR), 7)",
        "INSERT INTO app.events (user_id, kind, at) VALUES (LAST_INSERT_ID(), 'now', NOW(6))",
        "CREATE TEMPORARY TABLE tt (x INT)",
        "INSERT INTO tt VALUES (1),(2),(3)",
        "INSERT INTO app.events (user_id, kind, at) SELECT x, 'from-temp', '2020-01-01' FROM tt",
        "SET SESSION sql_mode = ''",
        "INSERT INTO app.users (email, name, score) "
        "VALUES ('mode', 'this name is far too long for fifty characters so it is cut', 'x')",
        "SET SESSION foreign_key_checks = 0, unique_checks = 0",
        "INSERT INTO app.events (user_id, kind, at) VALUES (@v_dec, @v_real, NULL)",
        "UPDATE app.users SET score = @v_big % 1000 WHERE email = 'rand'",
        "BEGIN",
        "INSERT INTO app.users (email, name, score) VALUES ('in-trx', 'T', 1)",
        "UPDATE app.users SET score = score * 2",
        "COMMIT",
        "SET SESSION time_zone = '+05:30'",
        "INSERT INTO app.events (user_id, kind, at) VALUES (1, 'tz', FROM_UNIXTIME(1000000000))",
        "DROP TEMPORARY TABLE tt",
    ], session_sql=("SET SESSION binlog_format = 'STATEMENT'",))
    # A second session with a temporary table of the same name, in MIXED format.
    run_on(source, [
        "CREATE TEMPORARY TABLE tt (y VARCHAR(5))",
        "INSERT INTO tt VALUES ('m1'), ('m2')",
        "INSERT INTO app.events (user_id, kind, at) SELECT 9, y, '2021-01-01' FROM tt",
        "INSERT INTO app.events (user_id, kind, at) VALUES (UUID_SHORT() % 2, 'unsafe-uses-row', NOW())",
    ], session_sql=("SET SESSION binlog_format = 'MIXED'",))
    ok(replay_into(source, target, start))
    assert_same_content(source, target)


TYPES_TABLE = """CREATE TABLE app.types (
  id INT PRIMARY KEY,
  t_utf8 VARCHAR(50) CHARACTER SET utf8mb4,
  t_latin1 VARCHAR(50) CHARACTER SET latin1,
  t_bin VARBINARY(50), t_blob LONGBLOB, t_json JSON,
  t_dec DECIMAL(30,10), t_dt DATETIME(6), t_ts TIMESTAMP(3) NULL, t_date DATE, t_time TIME(4),
  t_year YEAR, t_bit BIT(10), t_enum ENUM('a','b',''), t_set SET('x','y','z'),
  t_tu TINYINT UNSIGNED, t_bu BIGINT UNSIGNED, t_bs BIGINT, t_f FLOAT, t_d DOUBLE
)"""

TYPE_ROWS = [
    "INSERT INTO app.types VALUES (1, 'Zoë 🚀 ✓', 'café', X'00FF7F', REPEAT(X'DEADBEEF', 5000), "
    "'{\"a\": [1, 2.5, \"é\"], \"n\": null}', -12345678901234567890.0123456789, '2024-02-29 23:59:59.999999', "
    "'2038-01-19 03:14:07.123', '1000-01-01', '-838:59:59.9999', 2155, b'1010101010', '', '', 255, "
    "18446744073709551615, -9223372036854775808, 3.4e38, -1.7976931348623157e308)",
    "INSERT INTO app.types VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "INSERT INTO app.types (id, t_dt, t_date, t_year, t_set, t_tu) VALUES "
    "(3, '0000-00-00 00:00:00', '0000-00-00', 0000, 'x,z', 0)",
    "UPDATE app.types SET t_utf8 = 'ÅÄÖ', t_json = JSON_SET(t_json, '$.b', 'ü') WHERE id = 1",
    "DELETE FROM app.types WHERE id = 2",
    "INSERT INTO app.types (id, t_latin1, t_bin) VALUES (4, 'trailing  ', X'0000')",
]


@pytest.mark.parametrize("fmt", ["ROW", "STATEMENT"])
def test_column_types_round_trip(clean_servers, fmt: str) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, "CREATE DATABASE app", TYPES_TABLE)
    run_on(source, TYPE_ROWS, session_sql=(f"SET SESSION binlog_format = '{fmt}'", "SET SESSION sql_mode = ''"))
    ok(replay_into(source, target, start))
    assert_same_content(source, target)


def _gtids_and_positions(source) -> list[tuple[str, str, int, int]]:
    """(gtid, file, start, end) of every transaction in the source's binlogs, via binreplay's reader."""
    from pathlib import Path

    from binreplay.source.reader import BinlogReader

    files = [Path(p) for p in binlogs_from(source, "")]
    return [(str(t.gtid), t.file, t.start_pos, t.end_pos, t.timestamp)
            for t in BinlogReader(files).transactions()]


def test_stop_at_position_datetime_and_gtid(clean_servers) -> None:
    import time

    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('p{i}', 'x', {i})" for i in range(5)])
    time.sleep(1.2)
    mid_time = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time()))
    time.sleep(1.2)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('q{i}', 'y', {i})" for i in range(5)])
    trxs = [t for t in _gtids_and_positions(source) if (t[1], t[2]) >= start]
    assert len(trxs) == 10

    def count_on_target() -> int:
        return target.execute("SELECT COUNT(*) FROM app.users")[0][0]

    # --stop-position inside the 4th transaction: the first 3 are applied, the 4th is not.
    third_end, fourth = trxs[2][3], trxs[3]
    files = [f for f in binlogs_from(source, start[0]) if f.rsplit("/", 1)[-1] <= fourth[1]]
    r = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                      "--progress", "json", "--stop-position", str(fourth[2] + 5))
    ok(r)
    assert count_on_target() == 3 + 3
    assert "inside the transaction" in summary_of(r)["stop_reason"]
    # Extending the same replay to a later stop point resumes it.
    r = replay_into(source, target, start, "--stop-datetime", mid_time)
    ok(r)
    assert count_on_target() == 3 + 5
    # Up to and including a GTID.
    r = replay_into(source, target, start, "--stop-gtid", trxs[7][0])
    ok(r)
    assert count_on_target() == 3 + 8
    r = replay_into(source, target, start, "--stop-gtid", trxs[7][0])  # the same again: nothing to do
    ok(r)
    assert summary_of(r)["applied"] == 0 and count_on_target() == 3 + 8
    r = replay_into(source, target, start)
    ok(r)
    assert count_on_target() == 3 + 10
    assert_same_content(source, target)
    assert third_end <= fourth[2]


def test_start_gtid_and_stop_gtid_not_in_binlogs(clean_servers) -> None:
    source, target = clean_servers
    setup_backup(source, target, *BASE)
    gtid_at_backup = source.execute("SELECT @@gtid_binlog_pos")[0][0]
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('g{i}', 'x', {i})" for i in range(4)])
    files = binlogs_from(source, "")
    r = run_binreplay("replay", *files, *target.connection_flags(), "--start-gtid", gtid_at_backup,
                      "--stop-gtid", "0-1-999999", "--progress", "none")
    assert r.returncode == 3, r.stderr
    assert "0-1-999999" in r.stderr and "not in the binlogs" in r.stderr
    assert target.execute("SELECT COUNT(*) FROM app.users")[0][0] == 3  # preflight: nothing applied
    r = run_binreplay("replay", *files, *target.connection_flags(), "--start-gtid", gtid_at_backup,
                      "--progress", "none")
    ok(r)
    assert_same_content(source, target)


def test_preserve_gtids_into_a_target_with_binlog(clean_servers, tmp_path) -> None:
    from binreplay.devtools.sandbox import create_sandbox

    source, _ = clean_servers
    with create_sandbox(tmp_path / "gt", name="gt", server_id=7, log_bin=True, die_with_parent=True) as target:
        start = setup_backup(source, target, *BASE)
        target.execute("RESET MASTER")
        run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('x1', 'x', 1)",
                        "ALTER TABLE app.users ADD COLUMN extra INT",
                        "INSERT INTO app.users (email, name, score) VALUES ('x2', 'x', 2)"])
        source_pos = source.execute("SELECT @@gtid_binlog_pos")[0][0]
        ok(replay_into(source, target, start, "--preserve-gtids"))
        assert target.execute("SELECT @@gtid_binlog_pos")[0][0] == source_pos
        assert_same_content(source, target)


def test_dry_run_touches_nothing(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('dry', 'x', 1)"])
    files = binlogs_from(source, start[0])
    r = run_binreplay("replay", *files, "--start-position", str(start[1]), "--dry-run", "-h", "192.0.2.1")
    ok(r)
    assert "1 transactions would be applied" in r.stderr
    assert not target.execute("SHOW DATABASES LIKE 'binreplay'")


def test_large_transaction_is_split_into_binlog_statements(clean_servers) -> None:
    """A 100k-row statement (about 11 MB of row events) exceeds one BINLOG chunk: every row must arrive."""
    source, target = clean_servers
    start = setup_backup(source, target, *BASE, "CREATE TABLE app.big (id INT PRIMARY KEY, pad VARCHAR(120))")
    run_on(source, ["INSERT INTO app.big SELECT seq, REPEAT(CHAR(65 + seq % 26), 100) FROM seq_1_to_100000",
                    "UPDATE app.big SET pad = 'changed' WHERE id % 1000 = 0"])
    ok(replay_into(source, target, start))
    assert target.execute("SELECT COUNT(*) FROM app.big")[0][0] == 100000
    assert_same_content(source, target)


def test_non_transactional_changes_kept_after_rollback(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE, "CREATE TABLE app.mi (id INT PRIMARY KEY, v INT) ENGINE=MyISAM")
    with source.connect("app") as conn, conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("INSERT INTO app.users (email, name, score) VALUES ('rb', 'x', 1)")
        cur.execute("INSERT INTO app.mi VALUES (1, 1)")
        cur.execute("ROLLBACK")
        cur.execute("INSERT INTO app.mi VALUES (2, 2)")
    result = replay_into(source, target, start)
    ok(result)
    assert "`app`.`mi` uses MyISAM" in result.stderr
    assert target.execute("SELECT COUNT(*) FROM app.mi")[0][0] == 2
    assert_same_content(source, target)


def test_the_compiled_lane_reads_real_binlogs_as_python_does(clean_servers, monkeypatch) -> None:
    """MariaDB 10.11's own binlogs (CRC32, annotated rows, group commit ids) read with the compiled
    lane and without: the same transactions and the same BINLOG statements (tests/unit/test_hotpath.py
    does the fixtures and damaged files)."""
    from hotpath_compare import same_either_way, statements_same_either_way

    from binreplay import hotpath

    if hotpath.compiled is None:
        pytest.skip("the compiled hot path is not built here")
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    stmts = ["CREATE TABLE app.blobs (id INT PRIMARY KEY, b LONGBLOB, t TEXT) ENGINE=InnoDB",
             "CREATE TABLE app.plain (id INT PRIMARY KEY, v INT) ENGINE=MyISAM"]
    for i in range(120):
        stmts.append(f"INSERT INTO app.users (email, name, score) VALUES ('u{i}@x', 'n{i}', {i})")
        stmts.append("BEGIN")
        stmts.append(f"INSERT INTO app.events (user_id, kind, at) VALUES ({i % 7 + 1}, 'k{i % 3}', NOW(6))")
        stmts.append(f"UPDATE app.users SET score = score + 1 WHERE id % 5 = {i % 5}")
        if i % 9 == 0:
            stmts.append(f"INSERT INTO app.blobs VALUES ({i}, REPEAT('x', {20000 + i * 900}), 'é{i}')")
        stmts.append("COMMIT")
        if i % 13 == 0:
            stmts.append(f"INSERT INTO app.plain VALUES ({i}, {i})")
        if i % 17 == 0:
            stmts.append(f"DELETE FROM app.events WHERE id % 11 = {i % 11}")
        if i % 31 == 0:
            stmts.append(f"ALTER TABLE app.events ADD COLUMN c{i} INT")
        if i % 50 == 49:
            stmts.append("FLUSH BINARY LOGS")
    run_on(source, stmts)
    files = [Path(f) for f in binlogs_from(source, start[0])]
    assert same_either_way(files, monkeypatch) > 200
    assert statements_same_either_way(files, monkeypatch) > 5
