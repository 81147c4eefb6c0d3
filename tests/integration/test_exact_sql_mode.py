"""`--apply sql` exactly as `mariadb-binlog | mariadb`: triggers the binlog itself creates, CHECK
constraints the source skipped, and values near the target's max_allowed_packet. Each is compared
with the pipe by content (pipe_reference) at 1 and 8 workers, in both apply modes where the mode
applies; where SQL mode cannot be exact it must refuse before applying anything that would diverge.
"""

from __future__ import annotations

import json

import pytest
from pipe_reference import (
    PROGRESS_SCHEMA,
    WORKERS,
    binreplay_replay,
    differences,
    exact_as_pipe,
    pipe_replay,
    refused_where_pipe_stops,
    snapshot,
    take_backup,
)

from binreplay.errors import ExitCode

from helpers import binlogs_from
from replays import ok, run_on

LOGGED = ("CREATE DATABASE app",
          "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
          "CREATE TABLE app.log (id INT, note VARCHAR(40))",     # no key: a trigger's rows land twice
          "INSERT INTO app.t VALUES (1, 'before backup')")
TRIGGER = "CREATE TRIGGER app.t_ins AFTER INSERT ON app.t FOR EACH ROW INSERT INTO app.log VALUES (NEW.id, 'fired')"


def _backup(source, tmp_path, setup: tuple[str, ...]):
    for sql in setup:
        source.execute(sql)
    return take_backup(source, ["app"], tmp_path / "backup.sql")


# --- class 2: triggers created by the binlog ------------------------------------------------------

# (statements before the trigger's creation, after it, and whether a rotation comes before it). A trigger
# dropped again before any row arrives is refused too, as the start-of-run check refuses one whatever rows follow.
TRIGGER_CASES = {
    "mid-stream": (["INSERT INTO app.t VALUES (2, 'before')"],
                   ["INSERT INTO app.t VALUES (3, 'fires')", "UPDATE app.t SET v = 'x' WHERE id = 3"], False),
    "after-rotation": (["INSERT INTO app.t VALUES (2, 'before')"], ["INSERT INTO app.t VALUES (3, 'fires')"], True),
    "dropped-before-rows": ([], ["DROP TRIGGER app.t_ins", "INSERT INTO app.t VALUES (3, 'no trigger now')"], False),
    "table-renamed-later": ([], ["RENAME TABLE app.t TO app.t2", "INSERT INTO app.t2 VALUES (3, 'fires')"], False),
}


@pytest.mark.parametrize("case", sorted(TRIGGER_CASES))
def test_trigger_created_mid_stream_is_refused_where_it_appears(clean_servers, tmp_path, case: str) -> None:
    """A trigger the binlog creates on a replayed table is refused like one present at the start
    (exit 2, naming the trigger, its table and the statement's position), right after that
    statement: the target then holds exactly what the pipe holds up to there. --apply binlog, whose
    row events fire no trigger, replays it all exactly."""
    source, target = clean_servers
    before, after, rotate = TRIGGER_CASES[case]
    backup = _backup(source, tmp_path, LOGGED)
    run_on(source, before)
    if rotate:
        source.execute("FLUSH BINARY LOGS")
    run_on(source, [TRIGGER])
    stop = source.master_status()          # the end of the CREATE TRIGGER
    run_on(source, after)
    exact_as_pipe(source, target, backup, modes=("binlog",))
    refused_where_pipe_stops(source, target, backup, stop, ExitCode.USAGE,
                             ["`app`.`t_ins`", "`app`.`t`", f"{stop[0]}:", "--allow-triggers"])


def test_trigger_created_mid_stream_then_killed_is_refused_by_the_rerun(clean_servers, tmp_path) -> None:
    """Killed right after the CREATE TRIGGER ran, before its record: the rerun finds the trigger at
    its start and refuses there, the target still exactly the pipe's up to the CREATE TRIGGER."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, LOGGED)
    run_on(source, ["INSERT INTO app.t VALUES (2, 'before')", TRIGGER])
    stop = source.master_status()
    run_on(source, ["INSERT INTO app.t VALUES (3, 'fires')"])
    refused_where_pipe_stops(source, target, backup, stop, ExitCode.USAGE, ["`app`.`t_ins`", "`app`.`t`"],
                             crash_at="ddl-executed:1")


def test_trigger_created_mid_stream_with_allow_triggers_is_warned(clean_servers, tmp_path) -> None:
    """--allow-triggers: the divergence is the user's choice, warned about once per trigger and table
    with the position of the statement that put it there (also after a RENAME TABLE moved it)."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, LOGGED)
    run_on(source, [TRIGGER, "INSERT INTO app.t VALUES (3, 'fires')", "RENAME TABLE app.t TO app.t2",
                    "INSERT INTO app.t2 VALUES (4, 'fires')"])
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    outcome = binreplay_replay(target, files, backup.pos, 1, "sql", "--allow-triggers", "--progress", "json")
    ok(outcome.runs[-1])
    records = [json.loads(line) for line in outcome.runs[-1].stderr.splitlines() if line.startswith("{")]
    warnings = [r["message"] for r in records if r["type"] == "warning" and "triggers on" in r["message"]]
    assert len(warnings) == 2, warnings
    assert "`app`.`t` (`app`.`t_ins`)" in warnings[0] and "`app`.`t2` (`app`.`t_ins`)" in warnings[1]
    assert all(f"{backup.file}:" in w for w in warnings), warnings
    # As warned: each replayed row fired the trigger, and the binlog's copy of its row came too.
    assert target.execute("SELECT id, COUNT(*) FROM app.log GROUP BY id ORDER BY id") == [(3, 2), (4, 2)]


# --- class 9: CHECK constraints the source skipped ------------------------------------------------

CHECKED = ("CREATE DATABASE app",
           "CREATE TABLE app.doc (id INT PRIMARY KEY, j JSON, n INT CHECK (n > 0), "
           "CONSTRAINT small CHECK (n < 1000))",
           "INSERT INTO app.doc VALUES (1, '{\"ok\": true}', 5)")


def test_rows_written_without_check_constraints(clean_servers, tmp_path) -> None:
    """Rows the source wrote with check_constraint_checks=0 (invalid JSON in a MariaDB JSON column,
    values outside a CHECK) carry NO_CHECK_CONSTRAINT_CHECKS in their rows events: SQL mode applies
    them without the checks, as a replica does, and checks the rows written with them on."""
    source, target = clean_servers
    backup = _backup(source, tmp_path, CHECKED)
    run_on(source, [
        "SET SESSION check_constraint_checks = 0",
        "INSERT INTO app.doc VALUES (2, 'not json', -1), (3, '{\"a\":', 5000)",
        "UPDATE app.doc SET j = '{broken', n = 0 WHERE id = 1",
        # one transaction, checks switched in between: two rows events with different flags
        "BEGIN",
        "INSERT INTO app.doc VALUES (4, '[1, 2', 7)",
        "SET SESSION check_constraint_checks = 1",
        "INSERT INTO app.doc VALUES (5, '[1, 2]', 8)",
        "SET SESSION check_constraint_checks = 0",
        "DELETE FROM app.doc WHERE id = 3",
        "COMMIT",
        "SET SESSION check_constraint_checks = 1",
        "INSERT INTO app.doc VALUES (6, '{}', 9)"])
    exact_as_pipe(source, target, backup)


# --- class 10: large values -----------------------------------------------------------------------

BIG = 9 << 20
LARGE = ("CREATE DATABASE app",
         "CREATE TABLE app.big (id INT PRIMARY KEY, txt LONGTEXT CHARACTER SET utf8mb4, bin LONGBLOB, "
         "lat LONGTEXT CHARACTER SET latin1)",
         "INSERT INTO app.big VALUES (1, 'small', X'00', 'small')")
# Every byte value, quotes, backslashes and NULs among them.
ALL_BYTES = f"REPEAT(CONCAT(RANDOM_BYTES(1021), X'27005C'), {BIG // 1024})"
LARGE_WORKLOAD = [
    f"INSERT INTO app.big VALUES (2, REPEAT('é''\\\\ü\\n\"', {BIG // 8}), NULL, NULL)",
    f"INSERT INTO app.big VALUES (3, NULL, {ALL_BYTES}, NULL)",
    f"INSERT INTO app.big VALUES (4, NULL, NULL, REPEAT(X'E9275CFF00', {BIG // 5}))",
    # Several large rows in one statement: each its own packet, none joined past the limit.
    "INSERT INTO app.big SELECT id + 10, LEFT(txt, 2 << 20), LEFT(bin, 2 << 20), LEFT(lat, 2 << 20) "
    "FROM app.big WHERE id IN (2, 3, 4)",
    f"UPDATE app.big SET txt = REPEAT('x', {BIG}) WHERE id = 1",
    "DELETE FROM app.big WHERE id = 13",
]


def _large_values(source, tmp_path):
    backup = _backup(source, tmp_path, LARGE)
    # NOBLOB: an UPDATE logs its large columns once (the pipe's BINLOG statement must fit too).
    run_on(source, LARGE_WORKLOAD, session_sql=("SET SESSION binlog_row_image = 'NOBLOB'",))
    return backup


def test_large_values_fit_the_default_max_allowed_packet(clean_servers, tmp_path) -> None:
    """9 MiB strings and blobs (hex made them 18 MiB statements against the 16 MiB default
    max_allowed_packet: the connection dropped and the retries ran out)."""
    source, target = clean_servers
    assert target.execute("SELECT @@global.max_allowed_packet")[0][0] == 16 << 20
    exact_as_pipe(source, target, _large_values(source, tmp_path))


def test_value_larger_than_max_allowed_packet_is_one_clear_error(clean_servers, tmp_path) -> None:
    """A value no statement under the target's max_allowed_packet can carry: one line naming the
    row's table and position (no dropped connection, no retries), nothing of its transaction
    applied; with the limit raised, the same command resumes and ends exactly as the pipe."""
    source, target = clean_servers
    backup = _large_values(source, tmp_path)
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    pipe_replay(target, files, backup.pos)
    reference = snapshot(target)
    for n in WORKERS:
        backup.restore(target)
        target.execute(f"DROP DATABASE IF EXISTS {PROGRESS_SCHEMA}")
        target.execute(f"SET GLOBAL max_allowed_packet = {4 << 20}")
        try:
            refused = binreplay_replay(target, files, backup.pos, n, "sql").runs[-1]
        finally:
            target.execute(f"SET GLOBAL max_allowed_packet = {16 << 20}")
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.returncode == ExitCode.TARGET and len(lines) == 1, refused.stderr[-3000:]
        assert "INSERT of `app`.`big` at " in lines[0] and "max_allowed_packet (4194304 bytes)" in lines[0], lines[0]
        assert "lost" not in lines[0] and "attempts" not in lines[0], lines[0]
        assert target.execute("SELECT COUNT(*) FROM app.big WHERE id = 2") == [(0,)]
        resumed = binreplay_replay(target, files, backup.pos, n, "sql")
        ok(resumed.runs[-1])
        diffs = differences(reference, snapshot(target))
        assert not diffs, f"--workers {n}: resumed with the limit raised, differs from the pipe: {diffs}"


def test_quoted_literals_read_back_exactly_in_every_character_set(clean_servers) -> None:
    """The escaped form of large values (sql_values.quoted) under the row session's settings: for every
    character set of the server, stored values of random bytes (quotes, backslashes, NULs, bytes of
    multi-byte characters among them) read back byte-identical and match themselves in a WHERE."""
    import random

    from binreplay.apply.sql_rows import ROWS_SQL_MODE
    from binreplay.apply.sql_values import quoted

    _source, target = clean_servers
    rnd = random.Random(13)
    target.execute("CREATE DATABASE lit")
    with target.connect() as conn, conn.cursor() as cur:
        cur.execute(f"SET SESSION sql_mode = '{ROWS_SQL_MODE}', character_set_client = utf8mb4")
        cur.execute("SELECT CHARACTER_SET_NAME FROM information_schema.CHARACTER_SETS ORDER BY 1")
        charsets = [name for (name,) in cur.fetchall()]
        assert len(charsets) > 30
        for charset in charsets:
            cur.execute(f"CREATE TABLE lit.{charset} (id INT PRIMARY KEY, v LONGTEXT CHARACTER SET {charset})")
            for i in range(20):
                alphabet = bytes(range(256)) if i % 2 else b"'\\\0\n\r\x1a\x5c\x27ab\x81\xe0\xff"
                raw = bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 300)))
                # Whatever part of the random bytes is a valid string of the character set.
                cur.execute(f"INSERT IGNORE INTO lit.{charset} VALUES ({i}, CONVERT(X'{raw.hex()}' USING {charset}))")
            cur.execute(f"SELECT id, HEX(v) FROM lit.{charset} WHERE v <> ''")
            stored = [(i, bytes.fromhex(h)) for i, h in cur.fetchall()]
            assert len(stored) >= 10, charset
            for i, value in stored:
                literal = quoted(charset, value).encode("utf-8", "surrogateescape")
                cur.execute(b"SELECT HEX(" + literal + b") AS h, (SELECT COUNT(*) FROM lit." + charset.encode()
                            + b" WHERE id = " + str(i).encode() + b" AND v = " + literal + b") AS n")
                hex_back, matched = cur.fetchone()
                assert (bytes.fromhex(hex_back), matched) == (value, 1), (charset, value)
