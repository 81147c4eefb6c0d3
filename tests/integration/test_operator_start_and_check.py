"""What the operator is told before anything is applied (issue 14, items 7 and 9): the start line
(which server, from where), the refusal to replay a server's binlogs into itself (exit 13), and
`--check-target`, which finds every problem a replay would meet without writing to the target."""

from __future__ import annotations

import json
from pathlib import Path

from binreplay.errors import ExitCode

from helpers import assert_same_content, binlogs_from, replay_into, run_binreplay
from replays import BASE, ok, one_line_error, run_on, setup_backup, summary_of, users_on


def _records(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _five_after_backup(clean_servers):
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('n{i}', 'x', {i})" for i in range(5)])
    run_on(source, ["UPDATE app.users SET score = score + 1 WHERE id = 1", "DELETE FROM app.users WHERE id = 2"])
    return source, target, start, binlogs_from(source, start[0])


def _schemas(server) -> set[str]:
    return {row[0] for row in server.execute("SHOW DATABASES")}


def test_the_start_line_names_the_target_and_where_the_start_point_came_from(clean_servers) -> None:
    source, target, start, files = _five_after_backup(clean_servers)
    version = target.execute("SELECT @@version")[0][0]

    first = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                          "--progress", "plain")
    ok(first)
    lines = [line for line in first.stderr.splitlines() if line.startswith("binreplay: target ")]
    assert len(lines) == 1, first.stderr
    assert lines[0].startswith(f"binreplay: target socket {target.socket} ({version}, server_id 2, no binlog: "
                               "replayed transactions are not logged); "), lines[0]
    assert f"start {Path(files[0]).name}:{start[1]} (--start-position); stop at the end of the binlogs" in lines[0]
    assert first.stderr.index("binreplay: target ") < first.stderr.index("binreplay: complete:")
    assert_same_content(source, target)

    # The same in JSON, in the start record; a rerun starts from the target's own progress records.
    again = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                          "--progress", "json")
    ok(again)
    (record,) = [r for r in _records(again.stderr) if r["type"] == "start"]
    assert record["target"] == f"socket {target.socket}" and record["version"] == version
    assert record["server_id"] == 2 and record["log_bin"] is False and record["target_binlog"] == "on"
    assert record["start_from"] == f"the target's progress records of run {summary_of(again)['run_id']}"
    assert record["start"] == summary_of(again)["low_water"]
    assert record["stop"] == "at the end of the binlogs"


def test_the_server_that_wrote_the_binlogs_is_refused_as_target(clean_servers) -> None:
    source, target, start, files = _five_after_backup(clean_servers)
    before = source.execute("SELECT COUNT(*) FROM app.users")[0][0]

    r = run_binreplay("replay", *files, *source.connection_flags(), "--start-position", str(start[1]),
                      "--progress", "none")
    one_line_error(r, ExitCode.SAME_SERVER, "the target is the server that wrote these binlogs",
                   "server_id 1", "--allow-same-server")
    assert source.execute("SELECT COUNT(*) FROM app.users")[0][0] == before
    assert "binreplay" not in _schemas(source)           # not even the progress schema

    # A restored server that only shares the server_id (it writes no binlog) is warned about, not refused.
    target.execute("SET GLOBAL server_id = 1")
    shared = replay_into(source, target, start)
    ok(shared)
    assert any("server_id 1, the one that wrote these binlogs" in w for w in summary_of(shared)["warnings"])
    assert_same_content(source, target)


def test_check_target_reports_the_same_server_and_accepts_it_when_forced(clean_servers) -> None:
    source, target, start, files = _five_after_backup(clean_servers)
    args = ("replay", *files, *source.connection_flags(), "--start-position", str(start[1]), "--check-target",
            "--progress", "none")
    refused = run_binreplay(*args)
    assert refused.returncode == ExitCode.SAME_SERVER, refused.stderr
    assert "problem (exit 13): the target is the server that wrote these binlogs" in refused.stderr
    forced = run_binreplay(*args, "--allow-same-server")
    # The source's tables exist with the binlog's columns, root has every privilege: nothing else is wrong.
    assert forced.returncode == 0, forced.stderr
    assert "binreplay" not in _schemas(source)


def test_check_target_passes_and_writes_nothing(clean_servers, tmp_path) -> None:
    source, target, start, files = _five_after_backup(clean_servers)
    backup = tmp_path / "xtrabackup_binlog_info"
    backup.write_text(f"{start[0]}\t{start[1]}\n")
    r = run_binreplay("replay", *files, *target.connection_flags(), "--from-backup", str(backup),
                      "--check-target", "--progress", "plain")
    ok(r)
    assert "binreplay: target check passed; nothing was written to the target" in r.stderr
    assert f"start {start[0]}:{start[1]} (--from-backup {backup}); stop at the end of the binlogs" in r.stderr
    assert "; 7 transactions to apply" in r.stderr
    assert "binreplay" not in _schemas(target) and users_on(target) == 3

    js = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                       "--check-target", "--progress", "json")
    ok(js)
    (record,) = [r for r in _records(js.stderr) if r["type"] == "check"]
    assert record["ok"] is True and record["problems"] == [] and record["transactions"] == 7
    assert record["start"]["start"] == f"{Path(files[0]).name}:{start[1]}"
    assert "binreplay" not in _schemas(target)


def test_check_target_lists_every_missing_privilege_at_once(clean_servers) -> None:
    source, target, start, files = _five_after_backup(clean_servers)
    target.execute("CREATE USER 'reader'@'localhost' IDENTIFIED BY 'pw'")
    target.execute("GRANT SELECT ON app.* TO 'reader'@'localhost'")
    r = run_binreplay("replay", *files, "-S", str(target.socket), "-u", "reader", "--start-position", str(start[1]),
                      "--check-target", "--progress", "none", env={"MYSQL_PWD": "pw"})
    assert r.returncode == ExitCode.PRIVILEGE, r.stderr
    problems = [line for line in r.stderr.splitlines() if line.startswith("binreplay: problem (exit 5): ")]
    expected = ["BINLOG REPLAY (or SUPER), needed to apply row events", "CREATE on `binreplay`.*",
                "SELECT on `binreplay`.*", "INSERT on `binreplay`.*", "UPDATE on `binreplay`.*",
                "DELETE on `binreplay`.*", "INSERT on `app`.`users`", "UPDATE on `app`.`users`",
                "DELETE on `app`.`users`"]
    for what in expected:
        assert sum(what in line for line in problems) == 1, (what, r.stderr)
    assert r.stderr.strip().splitlines()[-1].startswith("binreplay: error: the target check found ")
    assert "Traceback" not in r.stderr
    assert "binreplay" not in _schemas(target) and users_on(target) == 3

    # Granted what was listed, the check passes and the replay runs as that user.
    target.execute("GRANT ALL ON app.* TO 'reader'@'localhost'")
    target.execute("GRANT ALL ON binreplay.* TO 'reader'@'localhost'")
    target.execute("GRANT BINLOG REPLAY ON *.* TO 'reader'@'localhost'")
    flags = ("-S", str(target.socket), "-u", "reader", "--start-position", str(start[1]), "--progress", "none")
    ok(run_binreplay("replay", *files, *flags, "--check-target", env={"MYSQL_PWD": "pw"}))
    ok(run_binreplay("replay", *files, *flags, env={"MYSQL_PWD": "pw"}))
    assert_same_content(source, target)


def test_check_target_finds_schema_and_progress_problems(clean_servers) -> None:
    source, target, start, files = _five_after_backup(clean_servers)
    target.execute("ALTER TABLE app.users ADD COLUMN extra INT")
    r = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                      "--check-target", "--progress", "none")
    assert r.returncode == ExitCode.SCHEMA_MISMATCH, r.stderr
    problems = [line for line in r.stderr.splitlines() if line.startswith("binreplay: problem (exit 9): ")]
    assert len(problems) == 1 and "`app`.`users`" in problems[0], r.stderr
    target.execute("ALTER TABLE app.users DROP COLUMN extra")

    # Progress records of another replay (another start point) on the target: exit 6, as the replay would.
    ok(run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                     "--progress", "none"))
    other = run_binreplay("replay", *files, *target.connection_flags(), "--check-target", "--progress", "none")
    assert other.returncode == ExitCode.STATE_CONFLICT, other.stderr
    assert "problem (exit 6): the target holds progress of a different replay" in other.stderr
    # With the same arguments the records fit: the check says where the replay would resume.
    same = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                         "--check-target", "--progress", "plain")
    ok(same)
    assert "(the target's progress records of run 1)" in same.stderr


def test_check_target_on_an_unreachable_target_is_one_line_and_exit_4() -> None:
    binlog = Path(__file__).parent.parent / "data" / "binlogs" / "mariadb" / "mdbpoc-11.8.5-sbr-gtid.000007"
    r = run_binreplay("replay", str(binlog), "-h", "127.0.0.1", "-P", "1", "--check-target", "--progress", "none")
    one_line_error(r, ExitCode.TARGET, "cannot connect", "127.0.0.1:1")
