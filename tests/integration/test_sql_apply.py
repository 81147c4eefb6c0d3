"""`--apply sql` (rows decoded to plain SQL) and the filters, against real servers.

Every replay is compared with the source by content (helpers.assert_same_content).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from helpers import (
    assert_same_content,
    binlogs_from,
    replay_into,
    run_binreplay,
    snapshot_to_target,
)

SQL = ("--apply", "sql")


def ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"


def run_on(source, statements, *, session=("SET SESSION sql_mode=''", "SET SESSION time_zone='+05:00'")) -> None:
    """One source session, non-strict (zero dates, ENUM ''), in a time zone other than UTC."""
    with source.connect() as conn, conn.cursor() as cur:
        for sql in (*session, *statements):
            cur.execute(sql)


def backup(source, target, *statements: str, schemas=("sa",)) -> tuple[str, int]:
    run_on(source, statements)
    return snapshot_to_target(source, target, list(schemas))


# --- every column type ---------------------------------------------------------------

ALL_TYPES = """CREATE TABLE sa.t (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d DECIMAL(65,30), du DECIMAL(10,2) UNSIGNED, d0 DECIMAL(18,0),
  f FLOAT, f2 FLOAT(7,3), db DOUBLE,
  dt DATE, tm TIME, tm1 TIME(1), tm3 TIME(3), tm6 TIME(6),
  dtt DATETIME, dtt2 DATETIME(2), dtt6 DATETIME(6),
  ts TIMESTAMP NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  y YEAR, b1 BIT(1), b10 BIT(10), b64 BIT(64),
  e ENUM('a','b','ü'), st SET('x','y','z'),
  cu CHAR(10) CHARACTER SET utf8mb4, vu VARCHAR(300) CHARACTER SET utf8mb4, tu TEXT CHARACTER SET utf8mb4,
  cl CHAR(10) CHARACTER SET latin1, vl VARCHAR(50) CHARACTER SET latin1, tl TEXT CHARACTER SET latin1,
  vbin VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, cbin CHAR(5) CHARACTER SET latin1 COLLATE latin1_bin,
  bn BINARY(4), vb VARBINARY(20), bl BLOB, mb MEDIUMBLOB,
  j JSON, g GEOMETRY, p POINT
) DEFAULT CHARSET=utf8mb4"""

ROWS = [
    # minimums, zero dates, YEAR 0000, empty SET, ENUM '' (error value), empty strings
    "(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, "
    "'-99999999999999999999999999999999999.999999999999999999999999999999', 0, -999999999999999999, "
    "-3.40282e38, -9999.999, -1.7976931348623157e308, '0000-00-00', '-838:59:59', '-838:59:58.9', "
    "'-00:00:01.500', '-00:00:00.000001', '0000-00-00 00:00:00', '0000-00-00 00:00:00.00', "
    "'2020-00-00 00:00:00.000000', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000', '0000-00-00 00:00:00', "
    "0, b'0', b'0', b'0', 'zz', '', '', '', '', '', '', '', '', '', '', '', '', '', "
    "'[]', ST_GeomFromText('POINT(0 0)'), POINT(0, 0))",
    # maximums
    "(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, "
    "18446744073709551615, '99999999999999999999999999999999999.999999999999999999999999999999', 99999999.99, "
    "999999999999999999, 3.40282e38, 9999.999, 1.7976931348623157e308, '9999-12-31', '838:59:59', "
    "'838:59:58.9', '23:59:59.999', '838:59:58.999999', '9999-12-31 23:59:59', '9999-12-31 23:59:59.99', "
    "'9999-12-31 23:59:59.999999', '2038-01-19 08:14:07', '2038-01-19 08:14:07.999', '2038-01-19 08:14:07.999999', "
    "2155, b'1', b'1111111111', b'1111111111111111111111111111111111111111111111111111111111111111', 'ü', 'x,y,z', "
    "'😀😀 ok', REPEAT('ü', 300), REPEAT('😀', 1000), _latin1 X'E9FFC0', _latin1 X'A0E9FF20', "
    "_latin1 X'00FFE9', 'AbC', 'aB', X'FFFFFFFF', X'00FF00FF00', REPEAT(X'00FF', 3000), REPEAT('x', 70000), "
    "'{\"a\": [1, 2.5, \"ü😀\", null, true, false], \"b\": {\"c\": {}, \"d\": -1e300}}', "
    "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(1 1,2 1,2 2,1 1))', 4326), POINT(-1.5, 1e-300))",
    # ordinary values, fractions, time-zone-sensitive timestamps, trailing spaces and NUL bytes
    "(3, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, '0.000000000000000000000000000001', 0.01, -1, 0.1, 1.5, 0.1, "
    "'2024-02-29', '12:34:56', '-12:34:56.7', '00:00:00.001', '-00:00:00.5', '2024-02-29 12:34:56', "
    "'1000-01-01 00:00:00.01', '2024-02-29 12:34:56.000001', '1970-01-01 05:00:01', '2024-06-01 12:00:00.5', "
    "'2024-06-01 12:00:00.000001', 1901, b'1', b'1000000001', "
    "b'1000000000000000000000000000000000000000000000000000000000000001', "
    "'a', '', 'trail  ', 'trail  ', 'é\\n\\t\\\\''\"', 'a', 'x  ', _latin1 X'5C27', 'x ', 'X', "
    "'a\\0', 'ab  ', X'00', '\\0\\0', '{\"k\": \"\\\\u0000 ü\", \"n\": [[[]]], \"x\": 12345678901234567890}', "
    "ST_GeomFromText('LINESTRING(0 0, 1 1, 2 1)'), POINT(1, 2))",
    # NULL in every nullable column
    "(4" + ", NULL" * 48 + ")",
    # float/double extremes that do not print exactly
    "(5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.17549e-38, -0.001, 5e-324, '1000-01-01', '00:00:00', "
    "'00:00:00.0', '00:00:00.000', '00:00:00.000000', '1000-01-01 00:00:00', '1000-01-01 00:00:00.00', "
    "'1000-01-01 00:00:00.000000', '1970-01-01 05:00:01', '1970-01-01 05:00:01.001', '1970-01-01 05:00:01.000001', "
    "1999, b'0', b'0000000001', b'0', 'b', 'y', 'ℤ', 'ℤ', 'ℤ', 'x', 'x', 'x', 'ℤ', 'x', 'x', 'x', 'x', 'x', "
    "'3.14', ST_GeomFromText('MULTIPOINT(1 1, 2 2)'), POINT(3, 4))",
]


def test_every_type_round_trips(clean_servers) -> None:
    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE sa", ALL_TYPES)
    statements = [f"INSERT INTO sa.t VALUES {row}" for row in ROWS]
    statements += [
        f"INSERT INTO sa.t SELECT id + 10, {', '.join(_columns(source)[1:])} FROM sa.t WHERE id <= 5",
        # every column of a row to another row's values, and a primary key change
        "UPDATE sa.t a JOIN sa.t b ON b.id = 12 SET " + ", ".join(f"a.{c} = b.{c}" for c in _columns(source)[1:])
        + " WHERE a.id = 11",
        "UPDATE sa.t SET id = id + 100 WHERE id = 13",
        "UPDATE sa.t a JOIN sa.t b ON b.id = 4 SET " + ", ".join(f"a.{c} = b.{c}" for c in _columns(source)[1:])
        + " WHERE a.id = 15",
        "UPDATE sa.t SET d = -d, db = -db, tm6 = '-00:00:00.000002', y = 0, st = '', e = 'zz' WHERE id = 14",
        "DELETE FROM sa.t WHERE id IN (1, 2)",
        "DELETE FROM sa.t WHERE id = 113",
        "INSERT INTO sa.t (id) VALUES (0)",   # a 0 id must stay 0 (NO_AUTO_VALUE_ON_ZERO)
    ]
    run_on(source, statements)
    ok(replay_into(source, target, start, *SQL, "--workers", "1"))
    assert_same_content(source, target)
    (count,) = target.execute("SELECT COUNT(*) FROM sa.t")[0]
    assert count == 8


def _columns(source) -> list[str]:
    return [r[0] for r in source.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='sa' AND TABLE_NAME='t' "
        "ORDER BY ORDINAL_POSITION")]


def test_without_metadata_names_come_from_the_target(clean_servers) -> None:
    """binlog_row_metadata=NO_LOG: no names, signedness or charsets in the binlog; the target's
    definition supplies them (and the run says so)."""
    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE sa", ALL_TYPES)
    source.execute("SET GLOBAL binlog_row_metadata = NO_LOG")
    run_on(source, [f"INSERT INTO sa.t VALUES {row}" for row in ROWS]
           + ["UPDATE sa.t SET biu = 18446744073709551614, vl = _latin1 X'FE' WHERE id = 2",
              "DELETE FROM sa.t WHERE id = 3"])
    result = replay_into(source, target, start, *SQL, "--workers", "1")
    ok(result)
    assert "taking them from the target" in result.stderr
    assert_same_content(source, target)


def test_without_metadata_and_without_the_table_is_refused(clean_servers) -> None:
    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE sa", "CREATE TABLE sa.k (id INT PRIMARY KEY)")
    source.execute("SET GLOBAL binlog_row_metadata = NO_LOG")
    run_on(source, ["INSERT INTO sa.k VALUES (1)"])
    target.execute("DROP TABLE sa.k")
    result = replay_into(source, target, start, *SQL)
    assert result.returncode in (7, 9), result.stderr   # unsupported / the target's tables do not match
    assert "sa`.`k" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert target.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='sa'")[0][0] == 0


# --- locating rows ----------------------------------------------------------------------

def test_table_without_primary_key_and_duplicate_rows(clean_servers) -> None:
    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE sa",
                   "CREATE TABLE sa.np (a INT, s VARCHAR(10) COLLATE utf8mb4_general_ci, f FLOAT, n INT NULL)",
                   "INSERT INTO sa.np VALUES (1,'abc',0.1,NULL),(1,'abc',0.1,NULL),(1,'ABC',0.1,NULL),"
                   "(1,'abc ',0.1,NULL),(2,'x',1.5,7),(2,'x',1.5,7)")
    run_on(source, [
        "DELETE FROM sa.np WHERE s = BINARY 'abc' LIMIT 1",       # one of two duplicates; not 'ABC'/'abc '
        "UPDATE sa.np SET n = 8 WHERE a = 2 LIMIT 1",             # one of two duplicates
        "UPDATE sa.np SET s = 'abd' WHERE s = BINARY 'ABC'",
        "DELETE FROM sa.np WHERE s = BINARY 'abc ' ",
        "INSERT INTO sa.np VALUES (3, NULL, NULL, NULL), (3, NULL, NULL, NULL)",
        "DELETE FROM sa.np WHERE a = 3 LIMIT 1",
    ])
    ok(replay_into(source, target, start, *SQL, "--workers", "1"))
    assert_same_content(source, target)


def test_parallel_workers_in_sql_mode(clean_servers) -> None:
    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE sa",
                   "CREATE TABLE sa.acc (id INT PRIMARY KEY, bal DECIMAL(12,2), note VARCHAR(20))",
                   "CREATE TABLE sa.kv (k VARCHAR(10), v INT, PRIMARY KEY (k, v))",
                   "INSERT INTO sa.acc SELECT seq, 100, 'n' FROM sa.seq_1_to_50")
    statements = []
    for i in range(400):
        a, b = i % 50 + 1, (i * 7) % 50 + 1
        statements += ["BEGIN", f"UPDATE sa.acc SET bal = bal - 1 WHERE id = {a}",
                       f"UPDATE sa.acc SET bal = bal + 1, note = 'm{i}' WHERE id = {b}",
                       f"INSERT INTO sa.kv VALUES ('k{i % 13}', {i})", "COMMIT"]
        if i % 9 == 0:
            statements.append(f"DELETE FROM sa.kv WHERE k = 'k{i % 13}' AND v < {i}")
    run_on(source, statements)
    ok(replay_into(source, target, start, *SQL, "--workers", "4"))
    assert_same_content(source, target)


# --- a target that differs from the source: stop as binlog mode does (error 1032) ------------

DIVERGED = ("CREATE DATABASE sa", "CREATE TABLE sa.t (id INT PRIMARY KEY, v INT)",
            "CREATE TABLE sa.np (a INT, v INT)",
            "INSERT INTO sa.t VALUES (1, 1), (2, 2), (3, 3)", "INSERT INTO sa.np VALUES (1, 1), (2, 2)")
ONE_BY_ONE = ("--workers", "1", "--no-group-commit")   # each source transaction its own target commit


def _rows_event_positions(source, file: str) -> set[str]:
    return {f"{file}:{pos}" for _, pos, kind, *_ in source.execute(f"SHOW BINLOG EVENTS IN '{file}'")
            if kind.endswith("_rows_v1") or kind.endswith("_rows")}


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line and not line.startswith("{")]


@pytest.mark.parametrize("diverge,failing,message", [
    ("DELETE FROM sa.t WHERE id = 2", "UPDATE sa.t SET v = 20 WHERE id = 2",
     "UPDATE of `sa`.`t` at {pos} matched 0 rows, expected 1: the target differs from the source"),
    ("DELETE FROM sa.t WHERE id = 2", "DELETE FROM sa.t WHERE id IN (2, 3)",
     "DELETE of `sa`.`t` at {pos} matched 1 row, expected 2: the target differs from the source"),
    ("UPDATE sa.np SET v = 7 WHERE a = 2", "UPDATE sa.np SET v = 20 WHERE a = 2",     # no primary key
     "UPDATE of `sa`.`np` at {pos} matched 0 rows, expected 1: the target differs from the source"),
    ("UPDATE sa.np SET v = 7 WHERE a = 2", "DELETE FROM sa.np WHERE a = 2",
     "DELETE of `sa`.`np` at {pos} matched 0 rows, expected 1: the target differs from the source"),
])
def test_a_row_missing_on_the_target_stops_the_replay(clean_servers, diverge: str, failing: str,
                                                      message: str) -> None:
    """The failing transaction is rolled back whole (its first UPDATE too); the ones before it are
    applied; once the target is fixed, rerunning the same command resumes and finishes."""
    source, target = clean_servers
    start = backup(source, target, *DIVERGED)
    target.execute(diverge)
    run_on(source, ["UPDATE sa.t SET v = 10 WHERE id = 1", "INSERT INTO sa.t VALUES (4, 4)",
                    "BEGIN", "UPDATE sa.t SET v = 30 WHERE id = 3", failing, "COMMIT",
                    "INSERT INTO sa.t VALUES (5, 5)"])
    result = replay_into(source, target, start, *SQL, *ONE_BY_ONE)
    assert result.returncode == 4, result.stderr
    (line,) = _error_lines(result.stderr)
    positions = _rows_event_positions(source, start[0])
    assert any(message.format(pos=pos) in line for pos in positions), line
    assert "Traceback" not in result.stderr
    assert target.execute("SELECT id, v FROM sa.t ORDER BY id") == (
        [(1, 10), (3, 3), (4, 4)] if "sa.t" in diverge else [(1, 10), (2, 2), (3, 3), (4, 4)])
    # fix the target (the row as the source had it), then the same command resumes
    target.execute("INSERT INTO sa.t VALUES (2, 2)" if "sa.t" in diverge else "UPDATE sa.np SET v = 2 WHERE a = 2")
    ok(replay_into(source, target, start, *SQL, *ONE_BY_ONE))
    assert_same_content(source, target)


def test_a_duplicate_key_insert_stops_the_replay(clean_servers) -> None:
    source, target = clean_servers
    start = backup(source, target, *DIVERGED)
    target.execute("INSERT INTO sa.t VALUES (5, 50)")
    run_on(source, ["INSERT INTO sa.t VALUES (4, 4)", "INSERT INTO sa.t VALUES (5, 5), (6, 6)"])
    result = replay_into(source, target, start, *SQL, *ONE_BY_ONE)
    assert result.returncode == 4, result.stderr
    (line,) = _error_lines(result.stderr)
    assert "error 1062" in line and "Duplicate entry '5'" in line, line
    assert target.execute("SELECT id, v FROM sa.t WHERE id > 3 ORDER BY id") == [(4, 4), (5, 50)]


def test_an_update_to_the_values_a_row_already_has_counts_as_matched(clean_servers) -> None:
    """The target's row already holds the new values (an UPDATE there changes nothing): it was found,
    so the replay goes on (the connection counts found rows, not changed ones)."""
    source, target = clean_servers
    start = backup(source, target, *DIVERGED)
    target.execute("UPDATE sa.t SET v = 20 WHERE id = 2")
    run_on(source, ["UPDATE sa.t SET v = 20 WHERE id = 2", "UPDATE sa.t SET v = 30 WHERE id = 3",
                    "UPDATE sa.np SET v = 10 WHERE a = 1"])
    ok(replay_into(source, target, start, *SQL))
    assert_same_content(source, target)


# --- renamed database, filters ----------------------------------------------------------

def test_renamed_database(clean_servers, tmp_path: Path) -> None:
    """Replay database `sa` into `sb`; the source's tables are then moved to `sb` (after the binlogs
    were copied away) so the two servers can be compared by content."""
    source, target = clean_servers
    ddl = ["CREATE TABLE t1 (id INT PRIMARY KEY, v VARCHAR(20), at DATETIME(3))",
           "CREATE TABLE t2 (id INT, note TEXT)"]
    run_on(source, ["CREATE DATABASE sa", "CREATE DATABASE other"] + [d.replace("CREATE TABLE ", "CREATE TABLE sa.")
                                                                      for d in ddl])
    start = source.master_status()
    target.execute("CREATE DATABASE sb")
    target.execute("CREATE DATABASE other")
    for d in ddl:
        target.execute(d.replace("CREATE TABLE ", "CREATE TABLE sb."))
    run_on(source, [
        "INSERT INTO sa.t1 VALUES (1, 'a', '2024-01-01 00:00:00.5'), (2, 'b', NULL)",
        "INSERT INTO sa.t2 VALUES (1, 'x'), (1, 'x')",
        "USE sa",
        "UPDATE t1 SET v = 'sa.t1 stays text' WHERE id = 1",
        "CREATE TABLE t3 (id INT PRIMARY KEY)",
        "ALTER TABLE `sa`.t2 ADD COLUMN extra INT DEFAULT 7",
        "INSERT INTO sa.t3 VALUES (1), (2)",
        "DELETE FROM sa.t2 LIMIT 1",
        "CREATE TABLE other.o (id INT PRIMARY KEY)",
        "INSERT INTO other.o VALUES (5)",
    ])
    files = binlogs_from(source, start[0])
    copies = []
    for f in files:
        copies.append(str(tmp_path / Path(f).name))
        shutil.copy(f, copies[-1])
    result = run_binreplay("replay", *copies, *target.connection_flags(), "--start-position", str(start[1]),
                           "--progress", "none", *SQL, "--rewrite-db", "sa->sb", "--workers", "2")
    ok(result)
    source.execute("CREATE DATABASE sb")
    for (table,) in source.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='sa'"):
        source.execute(f"RENAME TABLE sa.`{table}` TO sb.`{table}`")
    source.execute("DROP DATABASE sa")
    assert_same_content(source, target)


@pytest.mark.parametrize("mode", ["binlog", "sql"])
def test_filters(clean_servers, mode: str) -> None:
    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE a", "CREATE DATABASE b",
                   "CREATE TABLE a.keep1 (id INT PRIMARY KEY, v INT)", "CREATE TABLE a.keep2 (id INT PRIMARY KEY)",
                   "CREATE TABLE a.skip (id INT PRIMARY KEY, v INT)", "CREATE TABLE b.t (id INT PRIMARY KEY)",
                   "INSERT INTO a.keep1 VALUES (1, 0), (2, 0)", "INSERT INTO a.skip VALUES (1, 0), (2, 0)",
                   schemas=("a", "b"))
    before = {t: target.execute(f"CHECKSUM TABLE {t}")[0][1] for t in ("a.skip", "b.t")}
    run_on(source, [
        "BEGIN", "INSERT INTO a.keep1 VALUES (3, 1)", "INSERT INTO a.skip VALUES (3, 1)",
        "INSERT INTO b.t VALUES (1)", "INSERT INTO a.keep2 VALUES (1)", "COMMIT",
        # one statement, rows of a kept and a skipped table (the statement-end flag is on the skipped one)
        "UPDATE a.keep1 k JOIN a.skip s ON s.id = k.id SET k.v = k.v + 10, s.v = s.v + 10",
        "BEGIN", "DELETE FROM a.skip WHERE id = 1", "INSERT INTO b.t VALUES (2)", "COMMIT",   # left empty
        "ALTER TABLE a.skip ADD COLUMN w INT", "ALTER TABLE a.keep2 ADD COLUMN w INT DEFAULT 3",
        "CREATE TABLE b.new (id INT)", "USE b", "CREATE TABLE a.keep3 (id INT PRIMARY KEY)",
        "INSERT INTO a.keep3 VALUES (1)", "DROP TABLE b.t",
    ])
    result = replay_into(source, target, start, "--apply", mode, "--table", "a.keep*", "--ignore-database", "b",
                         "--workers", "2")
    ok(result)
    assert {t: target.execute(f"CHECKSUM TABLE {t}")[0][1] for t in ("a.skip", "b.t")} == before
    assert not target.execute("SELECT 1 FROM information_schema.TABLES WHERE TABLE_NAME = 'new'")
    for server in (source, target):
        server.execute("DROP TABLE IF EXISTS a.skip")
        server.execute("DROP DATABASE IF EXISTS b")
    assert_same_content(source, target)


def test_filtered_out_transactions_are_not_barriers(clean_servers) -> None:
    """A transaction the filters empty only records its progress: it takes no keys and does not run
    alone, so a filtered replay keeps its parallelism (and grouping) instead of going serial."""
    from binreplay.model import TrxKind
    from binreplay.schedule.dependencies import Dependencies
    from binreplay.schedule.scheduler import Scheduler
    from binreplay.server.tables import SchemaCache
    from binreplay.source.filters import Filters
    from binreplay.source.reader import BinlogReader

    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE a", "CREATE TABLE a.keep (id INT PRIMARY KEY, v INT)",
                   "CREATE TABLE a.skip (id INT PRIMARY KEY, v INT)", schemas=("a",))
    statements = []
    for i in range(150):
        statements += [f"INSERT INTO a.keep VALUES ({i}, {i})", f"INSERT INTO a.skip (id, v) VALUES ({i}, {i})"]
        if i % 50 == 0:
            statements.append(f"ALTER TABLE a.skip ADD COLUMN c{i} INT")   # a DDL filtered out
    run_on(source, statements)
    files = binlogs_from(source, start[0])

    # The scheduler's view: every transaction claimable in one group (a barrier would cut it).
    filters = Filters.from_options(ignore_tables=("a.skip*",))
    scheduler, seqs, emptied = Scheduler(), [], 0
    with target.connect() as conn:
        deps = Dependencies("row", SchemaCache(conn))
        for trx in BinlogReader([Path(f) for f in files], start_pos=start[1]).transactions():
            trx = filters.apply(trx)
            keys, after = deps.of(trx)
            if trx.kind is TrxKind.EMPTY:
                emptied += 1
                assert not trx.is_barrier and keys == {} and not trx.tables, trx
            scheduler.add(trx.seq, keys, barrier=trx.is_barrier, after=after, size=trx.size)
            seqs.append(trx.seq)
    assert emptied >= 150
    assert scheduler.claim(max_count=len(seqs)) == seqs

    # A real replay with 4 workers: right content, and target commits that group transactions.
    result = replay_into(source, target, start, "--ignore-table", "a.skip*", "--workers", "4", "--apply", "sql")
    ok(result)
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    commits = sum(int(re.search(r"\| (\d+) commits", w).group(1)) for w in summary["worker_states"])
    assert summary["applied"] == len(seqs) and commits < len(seqs), (commits, summary)
    assert target.execute("SELECT COUNT(*) FROM a.skip")[0][0] == 0
    for server in (source, target):
        server.execute("DROP TABLE a.skip")
    assert_same_content(source, target)


CTAS_SOURCE = ("CREATE DATABASE sa", "CREATE TABLE sa.t1 (id INT PRIMARY KEY, v TEXT)",
               "INSERT INTO sa.t1 VALUES (1, 'a'), (2, 'b'), (3, REPEAT('c', 2000))")


@pytest.mark.parametrize("metadata", ["FULL", "NO_LOG"])
def test_create_table_select_then_inserts(clean_servers, metadata: str) -> None:
    """CREATE TABLE ... SELECT logs the CREATE and t2's rows in one transaction: their SQL needs t2 as
    the CREATE made it (without FULL metadata its column names; with it, the hidden hash column of a
    long UNIQUE is left out). Later transactions on t2 must not use a definition looked up before
    t2 existed."""
    source, target = clean_servers
    start = backup(source, target, *CTAS_SOURCE)
    source.execute(f"SET GLOBAL binlog_row_metadata = {metadata}")
    run_on(source, [
        # MariaDB's long UNIQUE adds a hidden column only FULL metadata names (NO_LOG cannot map it)
        f"CREATE TABLE sa.t2 (id INT, v TEXT{', UNIQUE (v)' if metadata == 'FULL' else ''}) SELECT id, v FROM sa.t1",
        "INSERT INTO sa.t2 VALUES (4, 'd'), (5, NULL)",
        "UPDATE sa.t2 SET v = 'e' WHERE id = 4",
        "DELETE FROM sa.t2 WHERE id = 1",
        "BEGIN", "INSERT INTO sa.t1 VALUES (6, 'f')", "INSERT INTO sa.t2 SELECT id + 10, v FROM sa.t1 WHERE id = 6",
        "COMMIT",
        "CREATE TABLE sa.t3 (id INT PRIMARY KEY) SELECT id FROM sa.t2 WHERE id > 3",
        "INSERT INTO sa.t3 VALUES (100)",
    ])
    result = replay_into(source, target, start, *SQL, "--workers", "1")
    ok(result)
    assert_same_content(source, target)
    assert target.execute("SELECT COUNT(*) FROM sa.t2")[0][0] == 5


def test_a_connection_lost_while_rows_are_translated_is_retried(clean_servers) -> None:
    """Translating rows queries the target (its table definitions) before anything is sent: a worker
    connection killed just then is reconnected and the group retried, as when it dies applying."""
    from binreplay.apply.applier import Applier
    from binreplay.apply.encoders import encoder_factory
    from binreplay.apply.sql_rows import SqlApplyShared
    from binreplay.schedule.batches import Batcher
    from binreplay.schedule.limits import BatchLimits
    from binreplay.server.catalog import collations as load_collations
    from binreplay.server.connection import ServerConfig, connect, server_info
    from binreplay.source.reader import BinlogReader
    from binreplay.state.store import ProgressStore

    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE sa", "CREATE TABLE sa.t (id INT PRIMARY KEY, v INT)")
    run_on(source, ["INSERT INTO sa.t VALUES (1, 1), (2, 2)", "UPDATE sa.t SET v = 3 WHERE id = 2"])
    files = binlogs_from(source, start[0])
    cfg = ServerConfig(socket=str(target.socket), user="root")
    control = connect(cfg)
    try:
        store = ProgressStore(control)
        store.ensure_schema()
        store.begin_run("connection-lost-test", {}, [Path(f).name for f in files], restart=False)
        server, collations = server_info(control), load_collations(control)
        make_encoder = encoder_factory("sql", server.flavor, collations, SqlApplyShared(server.flavor, collations))
        applier = Applier(cfg, store, make_encoder)
        applier.open()
        target.execute(f"KILL CONNECTION {applier.conn.thread_id()}")
        batcher = Batcher(BatchLimits(max_transactions=1))
        for trx in BinlogReader([Path(f) for f in files], start_pos=start[1]).transactions():
            for batch in batcher.add(trx, apply=True) + batcher.flush():
                applier.apply_batch(batch)
        applier.close()
    finally:
        control.close()
    assert applier.retries == 1
    assert_same_content(source, target, schemas=["sa"])


# --- target checks -------------------------------------------------------------------------

def test_triggers_refused_unless_allowed(clean_servers) -> None:
    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE sa", "CREATE TABLE sa.t (id INT PRIMARY KEY, v INT)",
                   "CREATE TABLE sa.log (n INT)")
    target.execute("CREATE TRIGGER sa.t_ins AFTER INSERT ON sa.t FOR EACH ROW INSERT INTO sa.log VALUES (NEW.id)")
    run_on(source, ["INSERT INTO sa.t VALUES (1, 1)"])
    refused = replay_into(source, target, start, *SQL)
    assert refused.returncode == 2
    assert "triggers on `sa`.`t`" in refused.stderr and "--allow-triggers" in refused.stderr
    assert target.execute("SELECT COUNT(*) FROM sa.t")[0][0] == 0
    ok(replay_into(source, target, start, *SQL, "--allow-triggers", "--restart"))
    assert target.execute("SELECT n FROM sa.log") == [(1,)]   # the trigger fired, as warned


def test_sql_mode_needs_no_binlog_privilege(clean_servers) -> None:
    source, target = clean_servers
    start = backup(source, target, "CREATE DATABASE sa", "CREATE TABLE sa.t (id INT PRIMARY KEY, v INT)")
    target.execute("CREATE USER 'plain'@'localhost' IDENTIFIED BY 'pw'")
    target.execute("GRANT ALL ON sa.* TO 'plain'@'localhost'")
    target.execute("GRANT ALL ON binreplay.* TO 'plain'@'localhost'")
    run_on(source, ["INSERT INTO sa.t VALUES (1, 1), (2, 2)", "UPDATE sa.t SET v = 3 WHERE id = 2",
                    "CREATE TABLE sa.t2 (id INT)"])
    files = binlogs_from(source, start[0])
    flags = ["-S", str(target.socket), "-u", "plain", "-ppw", "--start-position", str(start[1]),
             "--progress", "none"]
    denied = run_binreplay("replay", *files, *flags)
    assert denied.returncode == 5, denied.stderr
    ok(run_binreplay("replay", *files, *flags, *SQL, "--restart"))
    assert_same_content(source, target)


# --- decoding pinned on real MySQL 8 binlogs (no server needed) ---------------------------









