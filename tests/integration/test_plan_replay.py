"""binreplay plan on binlogs written by a real source, and what replay then does on the same binlogs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from binreplay.schedule.limits import BATCH

from helpers import binlogs_from, run_binreplay


def plan_json(*args: str) -> dict:
    r = run_binreplay("plan", *args, "--format", "json")
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-3000:]}"
    return json.loads(r.stdout)


# Top-level keys of `--format json`, as README "The plan command" documents them.
PLAN_KEYS = {"format", "files", "transactions", "skipped", "first_timestamp", "last_timestamp", "bytes", "events",
             "rows", "kinds", "compressed", "databases", "tables", "ddl", "barriers", "largest", "modes",
             "serial_groups", "row_key_notes", "recommendation", "stop_reason", "warnings",
             "start_reason", "first_time", "last_time", "files_used"}


def run_session(source, statements: list[str], *, session_sql: tuple[str, ...] = ()) -> None:
    """Each statement in its own autocommit transaction, in one session."""
    with source.connect() as conn, conn.cursor() as cur:
        for sql in (*session_sql, *statements):
            cur.execute(sql)


def table(plan: dict, name: str) -> dict:
    return next(t for t in plan["tables"] if f"{t['database']}.{t['table']}" == name)


def estimate(plan: dict, mode: str, workers: int) -> dict:
    m = next(m for m in plan["modes"] if m["mode"] == mode)
    return next(w for w in m["workers"] if w["workers"] == workers)


def test_counts_match_what_was_written(clean_servers) -> None:
    source, _ = clean_servers
    start = source.master_status()
    run_session(source, [
        "CREATE DATABASE pl",
        "CREATE TABLE pl.t1 (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE pl.t2 (id INT PRIMARY KEY, v VARCHAR(20))",
        "CREATE TABLE pl.nokey (a INT, b INT)",
        *[f"INSERT INTO pl.t1 VALUES ({i}, 0)" for i in range(30)],
        "INSERT INTO pl.t2 VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e')",
        *[f"UPDATE pl.t2 SET v = 'u{i}' WHERE id = {i % 5 + 1}" for i in range(12)],
        "ALTER TABLE pl.t1 ADD COLUMN w INT NULL",
        "UPDATE pl.t1 SET v = v + 1",                    # one transaction, 30 rows
        "DELETE FROM pl.t1 WHERE id < 3",                # ids 0, 1, 2
        "INSERT INTO pl.nokey VALUES (1, 1), (2, 2)",
    ])
    run_session(source, ["UPDATE pl.t2 SET v = 'stmt' WHERE id = 1"],
                session_sql=("SET SESSION binlog_format = 'STATEMENT'",))
    files = binlogs_from(source, start[0])
    plan = plan_json(*files, "--start-position", str(start[1]))

    assert set(plan) == PLAN_KEYS and plan["format"] == 1
    assert plan["transactions"] == 4 + 30 + 1 + 12 + 1 + 1 + 1 + 1 + 1
    assert plan["kinds"] == {"ddl": 5, "rows": 46, "statement": 1}
    assert plan["rows"] == 30 + 5 + 12 + 30 + 3 + 2
    t1, t2, nokey = table(plan, "pl.t1"), table(plan, "pl.t2"), table(plan, "pl.nokey")
    assert (t1["inserts"], t1["updates"], t1["deletes"], t1["transactions"]) == (30, 30, 3, 32)
    assert (t2["inserts"], t2["updates"], t2["deletes"], t2["transactions"]) == (5, 12, 0, 13)
    assert (nokey["rows"], t1["rows"]) == (2, 63)
    assert t1["row_keys"] == t2["row_keys"] == "primary key"
    assert nokey["row_keys"] == "the table has no primary key"
    assert any(n.startswith("pl.nokey: one key for the whole table") for n in plan["row_key_notes"])
    assert all(t["uncounted_events"] == 0 for t in plan["tables"])
    (db,) = [d for d in plan["databases"] if d["database"] == "pl"]
    assert db["rows"] == plan["rows"] and db["bytes"] > t1["bytes"] + t2["bytes"] + nokey["bytes"]  # + DDL
    assert [d["sql"] for d in plan["ddl"]] == [
        "CREATE DATABASE pl", "CREATE TABLE pl.t1 (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE pl.t2 (id INT PRIMARY KEY, v VARCHAR(20))", "CREATE TABLE pl.nokey (a INT, b INT)",
        "ALTER TABLE pl.t1 ADD COLUMN w INT NULL"]
    assert all(d["position"].startswith(Path(files[0]).name + ":") for d in plan["ddl"])
    assert plan["barriers"] == {"DDL and other standalone statements": 5, "statement-based DML": 1}
    largest = plan["largest"][0]
    assert (largest["rows"], largest["tables"]) == (30, ["pl.t1"])   # the 30-row UPDATE
    assert plan["first_timestamp"] <= plan["last_timestamp"]
    assert {m["mode"] for m in plan["modes"]} == {"row", "table", "commit-order"}
    for m in plan["modes"]:
        assert [w["workers"] for w in m["workers"]] == [4, 8, 16]
        for w in m["workers"]:
            assert len(w["busy_histogram"]) == w["workers"] + 1
            assert sum(w["busy_histogram"]) == pytest.approx(1, abs=1e-3)
    rec = plan["recommendation"]
    assert rec["dependency"] in ("row", "table", "commit-order") and rec["workers"] in (1, 4, 8, 16) and rec["reason"]

    text = run_binreplay("plan", *files, "--start-position", str(start[1]), "--top", "2")
    assert text.returncode == 0, text.stderr
    assert "pl.t1" in text.stdout and "CREATE DATABASE pl" in text.stdout
    assert f"--workers {rec['workers']} --dependency {rec['dependency']}" in text.stdout
    assert "... 1 more tables" in text.stdout and "... 3 more statements" in text.stdout   # --top 2


def test_hot_row_finds_less_parallelism_than_disjoint_rows(clean_servers) -> None:
    # Several batches' worth of transactions (BatchLimits), so disjoint batches can run side by side.
    n = 4 * BATCH.max_transactions
    source, _ = clean_servers
    run_session(source, ["CREATE DATABASE pl", "CREATE TABLE pl.c (id INT PRIMARY KEY, n INT)",
                         f"INSERT INTO pl.c SELECT seq, 0 FROM pl.seq_1_to_{n}"])
    file, disjoint_start = source.master_status()
    run_session(source, [f"UPDATE pl.c SET n = n + 1 WHERE id = {i}" for i in range(1, n + 1)])
    hot_start = source.master_status()[1]
    run_session(source, ["UPDATE pl.c SET n = n + 1 WHERE id = 7"] * n)
    hot_end = source.master_status()[1]
    (path,) = [f for f in binlogs_from(source, file) if Path(f).name == file]

    disjoint = plan_json(path, "--start-position", str(disjoint_start), "--stop-position", str(hot_start))
    hot = plan_json(path, "--start-position", str(hot_start), "--stop-position", str(hot_end))
    assert disjoint["transactions"] == hot["transactions"] == n
    assert table(hot, "pl.c")["updates"] == n
    assert estimate(hot, "row", 8)["speedup"] == pytest.approx(1.0, abs=0.01)
    assert estimate(disjoint, "row", 8)["speedup"] > 3
    row = {name: next(m for m in plan["modes"] if m["mode"] == "row")
           for name, plan in (("hot", hot), ("disjoint", disjoint))}
    assert row["hot"]["longest_chain"] == n and row["disjoint"]["longest_chain"] == 1
    # One table: table mode sees the disjoint rows as one chain too.
    assert estimate(disjoint, "table", 8)["speedup"] == pytest.approx(1.0, abs=0.01)
    assert disjoint["recommendation"]["dependency"] == "row" and disjoint["recommendation"]["workers"] > 1
    assert hot["recommendation"]["workers"] == 1
