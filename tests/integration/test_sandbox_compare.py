"""Real-server tests for binreplay.devtools.sandbox and binreplay.devtools.compare."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from binreplay.devtools.compare import (
    TableDiff,
    compare_servers,
    normalized_table_ddl,
)
from binreplay.devtools.sandbox import Sandbox, create_sandbox
from binreplay.server.catalog import user_schemas

from helpers import assert_same_content, snapshot_to_target

Servers = tuple[Sandbox, Sandbox]


def _diffs(source: Sandbox, target: Sandbox, **kw: Any) -> list[TableDiff]:
    with source.connect() as ref, target.connect() as tgt:
        return compare_servers(ref, tgt, **kw)


def _on_both(servers: Servers, *statements: str) -> None:
    for sandbox in servers:
        for sql in statements:
            sandbox.execute(sql)


# ---- sandbox ---------------------------------------------------------------

def test_sandbox_lists_binlogs_and_position_moves(clean_servers: Servers) -> None:
    source, target = clean_servers
    assert source.is_running() and target.is_running()
    assert source.binlog_files() == [source.binlog_dir() / "source-bin.000001"]
    assert source.binlog_files()[0].is_file()
    assert target.binlog_files() == []

    file, pos = source.master_status()
    source.execute("CREATE DATABASE d")
    source.execute("CREATE TABLE d.t (id INT PRIMARY KEY)")
    source.execute("INSERT INTO d.t VALUES (1)")
    file2, pos2 = source.master_status()
    assert (file2, file) == ("source-bin.000001", "source-bin.000001") and pos2 > pos

    source.execute("FLUSH BINARY LOGS")
    assert [p.name for p in source.binlog_files()] == ["source-bin.000001", "source-bin.000002"]
    assert source.master_status() == ("source-bin.000002", source.master_status()[1])


def test_client_args_work_with_the_cli(clean_servers: Servers) -> None:
    source, _ = clean_servers
    out = subprocess.run(["mariadb", *source.client_args(), "-N", "-e", "SELECT @@server_id, 'é'"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "é"]
    assert source.connection_flags() == ["-S", str(source.socket), "-u", "root"]


def test_sandbox_survives_kill_and_restarts(tmp_path: Path) -> None:
    sandbox = create_sandbox(tmp_path / "crash", name="crash", log_bin=True, die_with_parent=True,
                             options={"binlog_format": "MIXED"})
    try:
        assert sandbox.execute("SELECT @@binlog_format, @@port") == [("MIXED", sandbox.port)]
        sandbox.execute("CREATE DATABASE d")
        sandbox.execute("CREATE TABLE d.t (id INT PRIMARY KEY)")
        sandbox.execute("INSERT INTO d.t VALUES (1), (2)")
        sandbox.kill()
        assert not sandbox.is_running()
        sandbox.kill()  # idempotent
        sandbox.start()  # reuses the datadir: crash recovery keeps committed rows
        sandbox.start()  # idempotent
        assert sandbox.execute("SELECT COUNT(*) FROM d.t") == [(2,)]
        assert len(sandbox.binlog_files()) == 2  # the server opens a new binlog after a restart
    finally:
        sandbox.stop()
    assert not sandbox.is_running()
    sandbox.stop()  # idempotent


def test_sandbox_reports_startup_failure(tmp_path: Path) -> None:
    sandbox = create_sandbox(tmp_path / "bad", name="bad", start=False,
                             options={"no-such-option": "1"})
    with pytest.raises(RuntimeError, match="no-such-option"):
        sandbox.start(timeout=20)
    assert not sandbox.is_running()


# ---- snapshot helper ---------------------------------------------------------

def test_snapshot_to_target_copies_data_and_returns_coordinates(clean_servers: Servers) -> None:
    source, target = clean_servers
    source.execute("CREATE DATABASE shop")
    source.execute("CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), "
                   "data LONGBLOB, price DECIMAL(8,2))")
    source.execute("INSERT INTO shop.items (name, data, price) VALUES "
                   "('a', x'00ff0d0a5c27', 1.5), ('A ', NULL, NULL), ('', '', 0)")
    source.execute("CREATE VIEW shop.cheap AS SELECT id FROM shop.items WHERE price < 1")
    source.execute("CREATE TRIGGER shop.trg BEFORE INSERT ON shop.items "
                   "FOR EACH ROW SET NEW.name = UPPER(NEW.name)")
    source.execute("CREATE DATABASE other")  # not copied

    coords = snapshot_to_target(source, target, ["shop"])

    assert coords == source.master_status()
    with target.connect() as conn:
        assert user_schemas(conn) == ["shop"]
    assert_same_content(source, target, schemas=["shop"])
    with pytest.raises(AssertionError, match="other: schema missing on target"):
        assert_same_content(source, target)


# ---- compare -----------------------------------------------------------------

_SETUP = (
    "CREATE DATABASE d",
    "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20) NULL, amount DECIMAL(5,2), "
    "b BLOB, f FLOAT, c CHAR(5))",
    "INSERT INTO d.t VALUES (1, 'a', 1.1, x'000102', 1.0000001, 'x'), "
    "(2, 'x', 2, 'blob', 0.5, NULL), (3, NULL, -3.25, NULL, NULL, '')",
    "CREATE TABLE d.nopk (v VARCHAR(10), n INT)",
    "INSERT INTO d.nopk VALUES ('a', 1), ('A', 1), ('a ', 1), ('a', 1)",
    "CREATE TABLE d.auto (id INT AUTO_INCREMENT PRIMARY KEY)",
    "INSERT INTO d.auto VALUES (), (), ()",
    "CREATE VIEW d.v AS SELECT id, v FROM d.t",
    "CREATE TRIGGER d.trg BEFORE INSERT ON d.t FOR EACH ROW SET NEW.c = 'trg'",
    "CREATE PROCEDURE d.p() SELECT 1",
    "CREATE EVENT d.e ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO SELECT 1",
)


@pytest.fixture
def same_data(clean_servers: Servers) -> Servers:
    _on_both(clean_servers, *_SETUP)
    return clean_servers


def test_identical_servers_have_no_diff(same_data: Servers) -> None:
    source, target = same_data
    assert _diffs(source, target) == []
    assert_same_content(source, target)


def test_compare_leaves_callers_connection_usable(same_data: Servers) -> None:
    source, target = same_data
    with source.connect() as ref, target.connect() as tgt:
        ref.cursor().execute("SET SESSION time_zone = '+05:00'")
        assert compare_servers(ref, tgt) == []
        with ref.cursor() as cur:
            cur.execute("SELECT v, amount, @@session.time_zone FROM d.t WHERE id = 1")
            assert cur.fetchone() == ("a", Decimal("1.10"), "+05:00")


@pytest.mark.parametrize(("target_sql", "table", "reason"), [
    ("DROP TABLE d.nopk", "nopk", "missing on target"),
    ("CREATE TABLE d.extra (i INT)", "extra", "missing on reference"),
    ("UPDATE d.t SET amount = 9 WHERE id = 2", "t",
     "content differs (first differing key (id=2): amount: 2.00 vs 9.00)"),
    ("INSERT INTO d.t (id) VALUES (4)", "t", "row count 3 vs 4"),
    ("DELETE FROM d.t WHERE id = 2", "t", "row count 3 vs 2"),
    ("UPDATE d.t SET v = 'A' WHERE id = 1", "t", "v: 'a' vs 'A'"),
    ("UPDATE d.t SET v = 'x ' WHERE id = 2", "t", "v: 'x' vs 'x '"),
    ("UPDATE d.t SET v = '' WHERE id = 3", "t", "v: NULL vs ''"),
    ("UPDATE d.t SET b = x'000103' WHERE id = 1", "t", "b: 0x000102 vs 0x000103"),
    ("UPDATE d.t SET f = 1.0000002 WHERE id = 1", "t", "f: 1.0000001192092896 vs 1.000000238418579"),
    ("UPDATE d.nopk SET v = 'A ' WHERE CAST(v AS BINARY) = 'a '", "nopk", "content differs"),
    ("ALTER TABLE d.t ADD INDEX (v)", "t", "definition differs"),
    ("CREATE OR REPLACE VIEW d.v AS SELECT id FROM d.t", "v", "view definition differs"),
    ("DROP TRIGGER d.trg", "trg", "trigger trg missing on target"),
    ("DROP PROCEDURE d.p", "p", "procedure p missing on target"),
    ("ALTER EVENT d.e DISABLE", "e", "event definition differs (Create Event: "),
    ("ALTER DATABASE d COLLATE utf8mb4_bin", "", "database definition differs"),
])
def test_each_kind_of_difference_is_reported(same_data: Servers, target_sql: str, table: str,
                                             reason: str) -> None:
    source, target = same_data
    target.execute(target_sql)
    diffs = _diffs(source, target)
    assert len(diffs) == 1, diffs
    assert (diffs[0].schema, diffs[0].table) == ("d", table)
    assert reason in diffs[0].reason, str(diffs[0])


@pytest.mark.parametrize("target_sql", [
    "UPDATE d.t SET amount = '1.10' WHERE id = 1",                  # same DECIMAL(5,2) value
    "ALTER TABLE d.auto AUTO_INCREMENT = 1000",                     # counter is not content
    "UPDATE d.nopk SET n = 1",                                      # no-op
    "CREATE DATABASE binreplay",                                    # excluded by default
])
def test_equal_values_are_not_reported(same_data: Servers, target_sql: str) -> None:
    source, target = same_data
    target.execute(target_sql)
    assert _diffs(source, target) == []


def test_rows_without_primary_key_compare_independent_of_insert_order(clean_servers: Servers) -> None:
    source, target = clean_servers
    _on_both(clean_servers, "CREATE DATABASE d", "CREATE TABLE d.bag (v VARCHAR(5), n INT)")
    source.execute("INSERT INTO d.bag VALUES ('a', 1), ('A', 1), ('a ', 1), (NULL, 2)")
    target.execute("INSERT INTO d.bag VALUES (NULL, 2), ('a ', 1), ('A', 1), ('a', 1)")
    assert _diffs(source, target) == []


def test_missing_schema_and_schema_filter(same_data: Servers) -> None:
    source, target = same_data
    source.execute("CREATE DATABASE only_src")
    assert _diffs(source, target) == [TableDiff("only_src", "", "schema missing on target")]
    assert _diffs(source, target, schemas=["d"]) == []


def test_content_diff_found_in_large_table(clean_servers: Servers) -> None:
    source, target = clean_servers
    _on_both(clean_servers, "CREATE DATABASE d",
             "CREATE TABLE d.big (id INT PRIMARY KEY, v VARCHAR(20))",
             "INSERT INTO d.big SELECT seq, CONCAT('v', seq) FROM d.seq_1_to_20000")
    target.execute("UPDATE d.big SET v = 'changed' WHERE id = 12345")
    [diff] = _diffs(source, target, chunk_rows=1000)
    assert "key (id=12345): v: 'v12345' vs 'changed'" in diff.reason


def test_normalized_table_ddl_strips_only_the_table_option() -> None:
    ddl = ("CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n"
           ") ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4")
    assert normalized_table_ddl(ddl) == (
        "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
