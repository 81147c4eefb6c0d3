"""`binreplay verify` against the real source/target servers: equal data passes, every kind of
difference is found, named, and narrowed down to a small key range."""

from __future__ import annotations

import json

import pytest

from helpers import run_binreplay, snapshot_to_target


def on_both(source, target, *statements: str) -> None:
    for server in (source, target):
        for sql in statements:
            server.execute(sql)


def verify(source, target, *extra: str):
    flags = [*target.connection_flags(), "--reference-socket", str(source.socket), "--reference-user", "root"]
    return run_binreplay("verify", *flags, *extra)


def verify_json(source, target, *extra: str) -> tuple[int, dict]:
    result = verify(source, target, "--format", "json", "-q", *extra)
    assert result.returncode in (0, 8), result.stderr
    return result.returncode, json.loads(result.stdout)


def difference(report: dict, table: str) -> dict:
    found = [d for d in report["differences"] if f"{d['database']}.{d['table']}" == table]
    assert found, f"{table} not reported: {report['differences']}"
    return found[0]


BIG = ("CREATE DATABASE big",
       "CREATE TABLE big.t (id INT PRIMARY KEY, v VARCHAR(20), n INT NULL)",
       "INSERT INTO big.t SELECT seq, CONCAT('v', seq), IF(seq % 3, seq, NULL) FROM big.seq_1_to_50000")


def test_restored_copy_is_equal(clean_servers) -> None:
    source, target = clean_servers
    source.execute("CREATE DATABASE shop")
    source.execute("CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40) COLLATE utf8mb4_general_ci, "
                   "price DECIMAL(10,2), weight FLOAT, ratio DOUBLE, flags BIT(5), kind ENUM('a','b'), "
                   "at DATETIME(6), ts TIMESTAMP(3) NULL, body TEXT, raw BLOB, doc JSON, missing INT NULL)")
    source.execute("INSERT INTO shop.items SELECT seq, CONCAT('Item ', seq), seq * 1.25, seq % 100 / 4, seq / 3, "
                   "seq % 32, "
                   "IF(seq % 2, 'a', 'b'), NOW(6), NOW(3), REPEAT('x', seq % 50), UNHEX(MD5(seq)), "
                   "JSON_OBJECT('n', seq), NULL FROM shop.seq_1_to_3000")
    source.execute("CREATE TABLE shop.lines (order_id INT, line INT, qty INT, PRIMARY KEY (order_id, line))")
    source.execute("INSERT INTO shop.lines SELECT seq DIV 4, seq % 4, seq FROM shop.seq_1_to_2000")
    source.execute("CREATE TABLE shop.log (msg VARCHAR(20))")
    source.execute("INSERT INTO shop.log VALUES ('a'), ('a'), (NULL), ('')")
    source.execute("CREATE VIEW shop.cheap AS SELECT id FROM shop.items WHERE price < 10")
    # (FLOAT values have few digits: mariadb-dump writes FLOAT with 6 significant digits, so
    # a dump does not restore 1/7 exactly, and verify would rightly report that.)
    snapshot_to_target(source, target, ["shop"])
    target.execute("CREATE DATABASE binreplay")      # the progress schema is not compared
    target.execute("CREATE TABLE binreplay.runs (x INT)")
    result = verify(source, target, "--chunk-size", "500")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the target equals the reference: 4 tables in 1 databases, 5004 rows" in result.stdout


def test_changed_row_in_a_large_table_is_narrowed_down(clean_servers) -> None:
    source, target = clean_servers
    on_both(source, target, *BIG)
    target.execute("UPDATE big.t SET v = 'changed' WHERE id = 25000")
    result = verify(source, target, "-q")
    assert result.returncode == 8, result.stderr
    assert "big.t: DIFFERENT" in result.stdout
    assert "verify: the target differs from the reference in 1 of 1 tables: big.t" in result.stderr
    code, report = verify_json(source, target)
    t = difference(report, "big.t")
    assert t["reference_rows"] == t["target_rows"] == 50000
    [r] = t["ranges"]
    assert r["after"][0] < 25000 <= r["upto"][0]
    assert r["reference_rows"] == r["target_rows"] <= 100
    assert r["first"][0] <= 25000 <= r["last"][0]


def test_extra_and_missing_rows(clean_servers) -> None:
    source, target = clean_servers
    on_both(source, target, *BIG)
    target.execute("DELETE FROM big.t WHERE id = 12345")
    target.execute("INSERT INTO big.t VALUES (60000, 'extra', 1)")
    code, report = verify_json(source, target, "--chunk-size", "5000")
    assert code == 8
    t = difference(report, "big.t")
    assert (t["reference_rows"], t["target_rows"]) == (50000, 50000)
    assert "row count" not in " ".join(t["problems"])     # equal totals, yet two differing ranges
    missing, extra = t["ranges"]
    assert missing["after"][0] < 12345 <= missing["upto"][0] and missing["reference_rows"] <= 100
    assert missing["reference_rows"] == missing["target_rows"] + 1
    assert extra["after"][0] < 60000 and extra["upto"] is None and extra["first"] == extra["last"] == [60000]


@pytest.mark.parametrize("case", ["null-vs-empty", "float", "case-only", "trailing-space", "no-key", "composite",
                                  "varchar-key", "missing-table", "extra-table", "columns", "column-type"])
def test_each_kind_of_difference(clean_servers, case: str) -> None:
    source, target = clean_servers
    on_both(source, target, "CREATE DATABASE d",
            "CREATE TABLE d.t (id INT PRIMARY KEY, s VARCHAR(20) COLLATE utf8mb4_general_ci NULL, f FLOAT)",
            "INSERT INTO d.t SELECT seq, CONCAT('s', seq), seq / 4 FROM d.seq_1_to_1000",
            "CREATE TABLE d.nokey (a INT, b VARCHAR(10))",
            "INSERT INTO d.nokey SELECT seq % 10, 'b' FROM d.seq_1_to_300",
            "CREATE TABLE d.comp (a INT, b VARCHAR(10), c INT, PRIMARY KEY (a, b))",
            "INSERT INTO d.comp SELECT seq DIV 10, CONCAT('k', seq % 10), seq FROM d.seq_1_to_3000",
            "CREATE TABLE d.names (name VARCHAR(30) COLLATE utf8mb4_unicode_ci PRIMARY KEY, n INT)",
            "INSERT INTO d.names SELECT CONCAT('name', LPAD(seq, 5, '0')), seq FROM d.seq_1_to_2000")
    change, table, expect = {
        "null-vs-empty": ("UPDATE d.t SET s = '' WHERE id = 500", "d.t", [500]),
        "float": ("UPDATE d.t SET f = 1.5000002 WHERE id = 6", "d.t", [6]),   # 1.5 on the reference
        "case-only": ("UPDATE d.t SET s = 'S700' WHERE id = 700", "d.t", [700]),
        "trailing-space": ("UPDATE d.t SET s = 's701 ' WHERE id = 701", "d.t", [701]),
        "no-key": ("UPDATE d.nokey SET b = 'B' WHERE a = 3 LIMIT 1", "d.nokey", None),
        "composite": ("UPDATE d.comp SET c = -1 WHERE a = 150 AND b = 'k3'", "d.comp", [150, "k3"]),
        "varchar-key": ("UPDATE d.names SET name = 'NAME01234' WHERE name = 'name01234'", "d.names", ["name01234"]),
        "missing-table": ("DROP TABLE d.comp", "d.comp", None),
        "extra-table": ("CREATE TABLE d.more (x INT)", "d.more", None),
        "columns": ("ALTER TABLE d.t ADD COLUMN extra INT", "d.t", None),
        "column-type": ("ALTER TABLE d.t MODIFY s VARCHAR(21) COLLATE utf8mb4_general_ci NULL", "d.t", None),
    }[case]
    on_both(source, target, "UPDATE d.t SET s = NULL WHERE id = 500")
    target.execute(change)
    code, report = verify_json(source, target, "--chunk-size", "300")
    assert code == 8
    assert [f"{d['database']}.{d['table']}" for d in report["differences"]] == [table]
    t = difference(report, table)
    if expect is None:
        assert t["problems"], t
        return
    [r] = t["ranges"]
    assert r["reference_rows"] <= 100
    assert r["first"] <= expect <= r["last"] or r["first"] == expect


def test_database_filter(clean_servers) -> None:
    source, target = clean_servers
    on_both(source, target, "CREATE DATABASE a", "CREATE TABLE a.t (id INT PRIMARY KEY)", "INSERT INTO a.t VALUES (1)",
            "CREATE DATABASE b", "CREATE TABLE b.t (id INT PRIMARY KEY)", "INSERT INTO b.t VALUES (1)")
    target.execute("UPDATE b.t SET id = 2")
    target.execute("CREATE DATABASE c")
    assert verify(source, target, "--database", "a").returncode == 0
    code, report = verify_json(source, target, "--database", "a", "--database", "b")
    assert code == 8 and [d["database"] for d in report["differences"]] == ["b"]
    code, report = verify_json(source, target)
    assert {(d["database"], d["table"]) for d in report["differences"]} == {("b", "t"), ("c", None)}
    bad = verify(source, target, "--database", "nowhere")
    assert bad.returncode == 2 and "nowhere" in bad.stderr


def test_unreachable_server_and_bad_flags(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    down = run_binreplay("verify", *target.connection_flags(), "--reference-socket", str(tmp_path / "none.sock"))
    assert down.returncode == 4
    assert down.stderr.strip().splitlines() == [down.stderr.strip()] and "reference" in down.stderr
    assert verify(source, target, "--chunk-size", "0").returncode == 2
    assert verify(source, target, "--threads", "x").returncode == 2


def test_a_row_too_large_to_hash_is_a_difference_not_a_pass(clean_servers) -> None:
    """A row image over max_allowed_packet hashes to NULL; it must not silently drop out of the sums."""
    source, target = clean_servers
    on_both(source, target, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, s VARCHAR(3000))",
            "INSERT INTO d.t VALUES (1, REPEAT('x', 2000)), (2, 'small')")
    target.execute("SET GLOBAL max_allowed_packet = 1024")
    code, report = verify_json(source, target)
    assert code == 8
    assert "1 rows could not be hashed on the target (value too large)" in difference(report, "d.t")["problems"], report
