"""Issue 14 item 12, as an operator meets it: `binreplay verify` also compares indexes, triggers and
table engines, and refuses to run without a reference server named on the command line."""

from __future__ import annotations

import json

from binreplay.errors import ExitCode

from helpers import run_binreplay

SCHEMA = (
    "CREATE DATABASE d",
    "CREATE TABLE d.t (id INT PRIMARY KEY, a INT, b VARCHAR(20), KEY ka (a)) ENGINE=InnoDB",
    "CREATE TABLE d.u (id INT PRIMARY KEY, note VARCHAR(10)) ENGINE=InnoDB",
    "CREATE TABLE d.same (id INT PRIMARY KEY, a INT, UNIQUE KEY ua (a)) ENGINE=InnoDB",
    "CREATE TRIGGER d.trg1 BEFORE INSERT ON d.t FOR EACH ROW SET NEW.a = NEW.a + 1",
    "CREATE TRIGGER d.trg2 BEFORE UPDATE ON d.t FOR EACH ROW SET NEW.b = UPPER(NEW.b)",
    "CREATE TRIGGER d.trg3 BEFORE INSERT ON d.same FOR EACH ROW SET NEW.a = NEW.a",
    "INSERT INTO d.t VALUES (1, 1, 'x'), (2, 2, 'y')",
    "INSERT INTO d.u VALUES (1, 'n')",
    "INSERT INTO d.same VALUES (1, 1)",
)
# Only definitions change: the rows stay equal.
ON_THE_TARGET = (
    "ALTER TABLE d.t DROP KEY ka, ADD UNIQUE KEY kb (b(10))",
    "ALTER TABLE d.u ENGINE=Aria",
    "DROP TRIGGER d.trg1",
    "DROP TRIGGER d.trg2",
    "CREATE TRIGGER d.trg2 BEFORE UPDATE ON d.t FOR EACH ROW SET NEW.b = LOWER(NEW.b)",
)


def _verify(source, target, *extra: str):
    return run_binreplay("verify", *target.connection_flags(), "--reference-socket", str(source.socket),
                         "--reference-user", "root", "-q", *extra)


def test_verify_reports_index_trigger_and_engine_differences(clean_servers) -> None:
    source, target = clean_servers
    for server in (source, target):
        for sql in SCHEMA:
            server.execute(sql)
    equal = _verify(source, target)
    assert equal.returncode == 0, equal.stdout + equal.stderr
    assert "the target equals the reference: 3 tables" in equal.stdout
    for sql in ON_THE_TARGET:
        target.execute(sql)

    r = _verify(source, target)
    assert r.returncode == ExitCode.DIFFERENT, r.stdout + r.stderr
    assert r.stderr.strip() == ("binreplay: error: verify: the target differs from the reference in 2 of 3 tables: "
                                "d.t, d.u"), r.stderr
    for line in ("d.t: DIFFERENT",
                 "    index ka (BTREE (a)): missing on the target",
                 "    index kb (UNIQUE BTREE (b(10))): extra on the target",
                 "    trigger trg1 (BEFORE INSERT #1): missing on the target",
                 "    trigger trg2 (BEFORE UPDATE #1): its body differs",
                 "d.u: DIFFERENT",
                 "    engine: InnoDB on the reference, Aria on the target"):
        assert line in r.stdout.splitlines(), r.stdout
    assert "d.same" not in r.stdout and "rows differ" not in r.stdout, r.stdout

    j = _verify(source, target, "--format", "json")
    assert j.returncode == ExitCode.DIFFERENT, j.stderr
    report = json.loads(j.stdout)
    problems = {f"{d['database']}.{d['table']}": d["problems"] for d in report["differences"]}
    assert problems["d.u"] == ["engine: InnoDB on the reference, Aria on the target"], problems
    assert len(problems["d.t"]) == 4 and not any(d["ranges"] for d in report["differences"]), problems


def test_verify_refuses_to_run_without_a_reference_server(clean_servers) -> None:
    _, target = clean_servers
    r = run_binreplay("verify", *target.connection_flags())
    assert r.returncode == ExitCode.USAGE, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("binreplay: error: verify needs the reference server"), r.stderr
    assert "--reference-host" in lines[0] and r.stdout == ""
