"""`binreplay status` reads a real replay's progress tables: finished, crashed, running."""

from __future__ import annotations

import json
import shlex
import signal

import pytest

from helpers import assert_same_content, replay_into, run_binreplay
from replays import BASE, run_on, setup_backup

WORKLOAD = ([f"INSERT INTO app.users (email, name, score) VALUES ('u{i}@x', 'n{i}', {i})" for i in range(40)]
            + ["ALTER TABLE app.users ADD COLUMN note VARCHAR(10)"]
            + [f"UPDATE app.users SET score = score + 1 WHERE id = {i % 5 + 1}" for i in range(40)])


def status(target, *extra: str) -> dict:
    result = run_binreplay("status", *target.connection_flags(), "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def replayed_source(clean_servers):
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, WORKLOAD)
    return source, target, start


def files_replayed(source, start) -> list[str]:
    """The files replay_into passed (it flushes the binlog first; this does not)."""
    return [str(p) for p in source.binlog_files() if p.name >= start[0]]


def test_no_run_recorded(clean_servers) -> None:
    _, target = clean_servers
    result = run_binreplay("status", *target.connection_flags())
    assert result.returncode == 0
    assert "no binreplay run recorded on this target" in result.stdout
    assert status(target)["state"] == "none"


def test_finished_replay(clean_servers) -> None:
    source, target, start = replayed_source(clean_servers)
    assert replay_into(source, target, start).returncode == 0
    files = files_replayed(source, start)
    st = status(target, *files)
    assert st["state"] == "complete" and st["recorded_state"] == "complete" and st["resume_command"] is None
    end_of_last = source.execute(f"SHOW BINLOG EVENTS IN '{st['low_water_mark'].split(':')[0]}'")
    last_xid = [e for e in end_of_last if e[2] in ("Xid", "Query")][-1]
    assert st["low_water_mark"].endswith(f":{last_xid[4]}")    # the end of the last transaction
    assert st["applied_above_mark"] == 0 and st["pending_ddl"] == [] and st["active_connection"] is None
    assert st["arguments"]["start_position"] == start[1]
    assert st["mark_transaction"]["position"] == st["low_water_mark"]
    assert st["mark_transaction"]["gtid"].startswith("0-1-")
    text = run_binreplay("status", *target.connection_flags(), *files).stdout
    assert "the last run finished" in text and "applied up to: " + st["low_water_mark"] in text


@pytest.mark.parametrize("crash", ["after-commit:5", "ddl-executed:1"])
def test_crashed_replay_is_incomplete_and_the_hint_resumes_it(clean_servers, crash: str) -> None:
    source, target, start = replayed_source(clean_servers)
    crashed = replay_into(source, target, start, "--workers", "2", "--group-max-trx", "3",
                          env={"BINREPLAY_CRASH_AT": crash})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    files = files_replayed(source, start)
    st = status(target, *files)
    assert st["state"] == "incomplete" and st["recorded_state"] == "running"   # recorded running, lock free
    assert st["active_connection"] is None
    if crash.startswith("ddl"):
        [ddl] = st["pending_ddl"]
        assert "ALTER TABLE app.users ADD COLUMN note" in ddl["statement"]
    else:
        assert st["applied_above_mark"] >= 1 and st["last_applied"]["gtid"].startswith("0-1-")
    text = run_binreplay("status", *target.connection_flags(), *files).stdout
    assert "did not finish" in text and st["resume_command"] in text
    words = shlex.split(st["resume_command"])
    assert words[:2] == ["binreplay", "replay"] and words[2:2 + len(files)] == files
    assert words[words.index("--start-position") + 1] == str(start[1])
    resumed = run_binreplay(*words[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert_same_content(source, target)
    assert status(target)["state"] == "complete"


def test_running_replay_is_active(clean_servers) -> None:
    source, target, start = replayed_source(clean_servers)
    assert replay_into(source, target, start).returncode == 0
    with target.connect() as conn, conn.cursor() as cur:
        # What a running replay holds for its whole run (checkpoint.ProgressStore.lock).
        cur.execute("SELECT GET_LOCK('binreplay:binreplay', 0), CONNECTION_ID()")
        got, me = cur.fetchone()
        assert got == 1
        st = status(target)
        assert st["state"] == "active" and st["active_connection"] == me
        text = run_binreplay("status", *target.connection_flags()).stdout
        assert "a replay is running now" in text and f"connection {me}" in text
        # And a replay started meanwhile is refused, as status implies.
        assert replay_into(source, target, start).returncode == 6
    assert status(target)["state"] == "complete"


def test_other_progress_schema_in_resume_hint(clean_servers) -> None:
    source, target, start = replayed_source(clean_servers)
    crashed = replay_into(source, target, start, "--progress-schema", "pitr", "--group-max-trx", "3",
                          env={"BINREPLAY_CRASH_AT": "after-commit:3"})
    assert crashed.returncode == -signal.SIGKILL
    assert status(target)["state"] == "none"
    st = status(target, "--progress-schema", "pitr")
    assert st["state"] == "incomplete" and "--progress-schema pitr" in st["resume_command"]


def test_resume_hint_of_a_filtered_sql_mode_run(clean_servers) -> None:
    """The hint repeats the filters, --rewrite-db and --apply sql (without them the rerun would be
    another replay: exit 6). Patterns given in another order are the same replay."""
    source, target, start = replayed_source(clean_servers)
    run_on(source, [f"INSERT INTO app.events (user_id, kind, at) VALUES ({i}, 'k', NOW(6))" for i in range(20)])
    events_before = target.execute("CHECKSUM TABLE app.events")[0][1]
    crashed = replay_into(source, target, start, "--workers", "2", "--group-max-trx", "3", "--apply", "sql",
                          "--ignore-table", "app.events", "--ignore-table", "app.ev%", "--database", "app",
                          "--rewrite-db", "nosuch->other", "--allow-triggers",
                          env={"BINREPLAY_CRASH_AT": "after-commit:5"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    files = files_replayed(source, start)
    st = status(target, *files)
    assert st["state"] == "incomplete"
    words = shlex.split(st["resume_command"])
    for flag, value in (("--ignore-table", "app.ev%"), ("--ignore-table", "app.events"), ("--database", "app"),
                        ("--rewrite-db", "nosuch->other"), ("--apply", "sql")):
        assert any(words[i:i + 2] == [flag, value] for i in range(len(words))), (flag, value, words)
    assert "--allow-triggers" in words
    resumed = run_binreplay(*words[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert status(target)["state"] == "complete"
    assert target.execute("CHECKSUM TABLE app.events")[0][1] == events_before   # still filtered out
    for server in (source, target):
        server.execute("DROP TABLE app.events")
    assert_same_content(source, target)
