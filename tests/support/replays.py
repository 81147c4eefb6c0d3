"""What many replay tests share: a backup of the source restored into the target, source sessions,
the CLI's result checks, and the base schema most of them start from."""

from __future__ import annotations

import json

from binreplay.errors import ExitCode

from helpers import binlogs_from, snapshot_to_target


def setup_backup(source, target, *statements: str, schemas=("app",)) -> tuple[str, int]:
    for sql in statements:
        source.execute(sql)
    return snapshot_to_target(source, target, list(schemas))


def run_on(source, statements: list[str], *, session_sql: tuple[str, ...] = (), database: str = "app") -> None:
    """Run statements in one source session (so session settings and temp tables hold)."""
    with source.connect(database) as conn, conn.cursor() as cur:
        for sql in session_sql:
            cur.execute(sql)
        for sql in statements:
            cur.execute(sql)


def ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"


def summary_of(result) -> dict:
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return next(r for r in records if r["type"] == "summary")


BASE = ("CREATE DATABASE app",
        "CREATE TABLE app.users (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(100) UNIQUE, "
        "name VARCHAR(50), score INT)",
        "CREATE TABLE app.events (id BIGINT PRIMARY KEY AUTO_INCREMENT, user_id INT, kind VARCHAR(20), "
        "at DATETIME(6))",
        "INSERT INTO app.users (email, name, score) VALUES ('a@x','Ann',1),('b@x','Bob',2),('c@x','Cid',3)")


def one_line_error(result, code: ExitCode, *fragments: str) -> None:
    assert result.returncode == code, f"exit {result.returncode}: {result.stderr}"
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("binreplay: error: ") or code == ExitCode.USAGE
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def users_on(target) -> int:
    return target.execute("SELECT COUNT(*) FROM app.users")[0][0]


def shop_after_backup(clean_servers, transactions: int, **workload):
    """The shop database backed up into the target, then `transactions` more on the source."""
    from binreplay.devtools.workload import create_base, run_workload

    source, target = clean_servers
    with source.connect() as conn:
        create_base(conn, customers=300, products=100)
    start = setup_backup(source, target, schemas=("shop",))
    with source.connect() as conn:
        run_workload(conn, transactions, **workload)
    return source, target, start, binlogs_from(source, start[0])
