"""Groups MariaDB flags DDL that do not commit implicitly: a `CREATE TEMPORARY TABLE` inside BEGIN ...
COMMIT (or ROLLBACK) sets the flag on its whole group in STATEMENT and MIXED formats, but commits
nothing; only CREATE [OR REPLACE] TABLE ... SELECT logged as its CREATE then rows does. Every
statement of such a group must be applied (none dropped), next to real CREATE TABLE ... SELECTs of
each format in the same binlog. Compared by content with `mariadb-binlog | mariadb` at 1 and 8 workers
in both apply modes (pipe_reference.exact_as_pipe)."""

from __future__ import annotations

import re

import pytest
from pipe_reference import exact_as_pipe, take_backup

from replays import run_on

SETUP = ("CREATE DATABASE app",
         "CREATE TABLE app.i (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB",
         "CREATE TABLE app.m (id INT PRIMARY KEY, n INT) ENGINE=MyISAM",
         "INSERT INTO app.i VALUES (1, 'a'), (2, 'b')")

MISTAKEN = re.compile(r"opened at (\S+)\) stay open across CREATE \.\.\. SELECT, which commits implicitly at \1:")


@pytest.mark.parametrize("binlog_format", ["STATEMENT", "MIXED"])
def test_a_group_with_create_temporary_table_is_applied_whole(clean_servers, tmp_path, binlog_format) -> None:
    source, target = clean_servers
    for sql in SETUP:
        source.execute(sql)
    backup = take_backup(source, ["app"], tmp_path / "backup.sql")
    # MIXED: UUID() is unsafe, so that INSERT is logged as rows inside the statement group.
    value = "UUID()" if binlog_format == "MIXED" else "'x'"
    run_on(source, [
        # CREATE TABLE ... SELECT logged in row format: the CREATE, then its rows (InnoDB, and MyISAM).
        "CREATE TABLE app.c_row SELECT * FROM app.i",
        "CREATE OR REPLACE TABLE app.c_row SELECT id, v FROM app.i WHERE id > 1",
        "CREATE TABLE app.c_row_m ENGINE=MyISAM SELECT * FROM app.i",
        "CREATE TABLE app.c_row_e SELECT * FROM app.i WHERE id > 100",
        "INSERT INTO app.c_row VALUES (3, 'row')",
    ], session_sql=("SET SESSION binlog_format = 'ROW'",))
    run_on(source, [
        # CREATE TABLE ... SELECT in this session's format, no temporary table open: a statement of its own.
        "CREATE TABLE c_first SELECT * FROM i",
        "BEGIN", "CREATE TEMPORARY TABLE t4 (a INT)", f"INSERT INTO i VALUES (7, {value})",
        "INSERT INTO t4 VALUES (1)", "COMMIT",
        "INSERT INTO i SELECT 8, a FROM t4",
        "BEGIN", "CREATE TEMPORARY TABLE t5 (a INT)", "INSERT INTO m VALUES (9, 9)", "ROLLBACK",
        "BEGIN", "CREATE TEMPORARY TABLE t6 SELECT id FROM i", "INSERT INTO m SELECT id, 6 FROM t6 WHERE id < 3",
        "INSERT INTO i VALUES (11, 'with t6')", "COMMIT",
        # Temporary tables open: STATEMENT logs it as a statement of its own, MIXED as its CREATE then rows.
        "CREATE TABLE c_stmt SELECT * FROM i",
        "CREATE TEMPORARY TABLE t7 SELECT * FROM i",
        "INSERT INTO c_stmt SELECT id + 100, v FROM t7",
        "INSERT INTO i VALUES (10, 'after')",
    ], session_sql=(f"SET SESSION binlog_format = '{binlog_format}'",))
    run_on(source, ["CREATE OR REPLACE TABLE app.c_row2 SELECT * FROM app.i", "INSERT INTO app.i VALUES (12, 'end')"],
           session_sql=("SET SESSION binlog_format = 'ROW'",))
    for outcome in exact_as_pipe(source, target, backup):
        # No group that opens a temporary table is taken for a CREATE ... SELECT (a real one may cut the span).
        err = outcome.runs[-1].stderr
        assert not MISTAKEN.search(err), err
