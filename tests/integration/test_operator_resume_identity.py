"""What identifies a replay, what --restart may do, and errors that say whether a rerun can help (issue
14, items 5 and 6), run as a DBA runs them: the command, its output, its exit code, the target by content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from binreplay.errors import ExitCode
from binreplay.source.reader import BinlogReader

from helpers import assert_same_content, binlogs_from, run_binreplay
from replays import BASE, ok, one_line_error, run_on, setup_backup, summary_of, users_on

INSERTS = [f"INSERT INTO app.users (email, name, score) VALUES ('ri{i}', 'x', {i})" for i in range(20)]


def backed_up(clean_servers, tmp_path: Path):
    """BASE restored into the target as a backup whose xtrabackup_binlog_info holds its coordinates,
    then 20 inserts on the source: (source, target, binlog files, the backup directory)."""
    source, target = clean_servers
    file, pos = setup_backup(source, target, *BASE)
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "xtrabackup_binlog_info").write_text(f"{file}\t{pos}\n")
    run_on(source, INSERTS)
    return source, target, binlogs_from(source, file), backup


def restore_backup_again(target) -> None:
    target.execute("DROP DATABASE app")
    for sql in BASE:
        target.execute(sql)


def test_the_same_backup_by_another_path_is_the_same_replay(clean_servers, tmp_path: Path) -> None:
    source, target, files, backup = backed_up(clean_servers, tmp_path)
    tenth = list(BinlogReader([Path(f) for f in files], start_pos=None).transactions())[-11]

    def replay(backup_arg: str, *extra: str):
        return run_binreplay("replay", *files, *target.connection_flags(), "--from-backup", backup_arg,
                             "--progress", "json", *extra)

    ok(replay(os.path.relpath(backup / "xtrabackup_binlog_info"), "--stop-gtid", str(tenth.gtid)))
    assert users_on(target) == 13
    extended = replay(str(backup.absolute()))        # the directory, by its absolute path
    ok(extended)
    assert summary_of(extended)["applied"] == 10
    assert_same_content(source, target, ["app"])


def test_restart_undoes_nothing_and_refuses_a_target_past_its_start(clean_servers, tmp_path: Path) -> None:
    source, target, files, backup = backed_up(clean_servers, tmp_path)

    def replay(*extra: str):
        return run_binreplay("replay", *files, *target.connection_flags(), "--from-backup", str(backup),
                             "--progress", "none", *extra)

    ok(replay())
    refused = replay("--restart")
    one_line_error(refused, ExitCode.STATE_CONFLICT, "--restart undoes nothing", "restore the backup again",
                   "--target-restored")
    assert "rerun the same command" not in refused.stderr
    assert users_on(target) == 23                   # nothing applied twice, nothing undone

    alone = replay("--target-restored")
    assert alone.returncode == ExitCode.USAGE and "--target-restored goes with --restart" in alone.stderr

    restore_backup_again(target)
    restarted = run_binreplay("replay", *files, *target.connection_flags(), "--from-backup", str(backup),
                              "--progress", "json", "--restart", "--target-restored")
    ok(restarted)
    [note] = [w for w in summary_of(restarted)["warnings"] if "abandoned" in w]
    assert "nothing is undone" in note
    assert_same_content(source, target, ["app"])


def test_a_forgotten_start_point_is_named_and_the_corrected_command_runs(clean_servers, tmp_path: Path) -> None:
    source, target, files, backup = backed_up(clean_servers, tmp_path)
    # Without --from-backup the replay starts at the binlog's beginning: CREATE DATABASE app, which
    # the restored backup already holds. A rerun would meet it again: no "rerun to resume".
    forgot = run_binreplay("replay", *files, *target.connection_flags(), "--progress", "none")
    one_line_error(forgot, ExitCode.TARGET, "statement 'CREATE DATABASE app'", "database exists", "GTID 0-1-1",
                   "--from-backup", "restore the backup again")
    assert "rerun the same command" not in forgot.stderr
    # It applied nothing, so the corrected command replaces that run without --restart.
    fixed = run_binreplay("replay", *files, *target.connection_flags(), "--from-backup", str(backup),
                          "--progress", "json")
    ok(fixed)
    assert any("it had applied nothing" in w for w in summary_of(fixed)["warnings"])
    assert_same_content(source, target, ["app"])


@pytest.mark.parametrize("apply_mode", ["binlog", "sql"])
def test_a_duplicate_key_names_the_table_and_the_source_event(clean_servers, tmp_path: Path, apply_mode) -> None:
    source, target, files, backup = backed_up(clean_servers, tmp_path)
    target.execute("INSERT INTO app.users (id, email, name, score) VALUES (14, 'other', 'not in the backup', 0)")
    trx = [t for t in BinlogReader([Path(f) for f in files]).transactions() if t.tables][-10]   # inserts id 14
    result = run_binreplay("replay", *files, *target.connection_flags(), "--from-backup", str(backup),
                           "--apply", apply_mode, "--workers", "1", "--group-max-trx", "1", "--progress", "none")
    one_line_error(result, ExitCode.TARGET, f"the transaction at {trx.start} (GTID {trx.gtid}), writing app.users",
                   "error 1062: Duplicate entry '14'", "was it restored from the backup")
    assert "BINLOG" not in result.stderr and "rerun the same command" not in result.stderr
    assert users_on(target) == 14                  # 3 + the foreign row + the 10 inserts before it


def test_a_batch_rejected_names_its_range_and_tables(clean_servers, tmp_path: Path) -> None:
    source, target, files, backup = backed_up(clean_servers, tmp_path)
    target.execute("INSERT INTO app.users (id, email, name, score) VALUES (14, 'other', 'not in the backup', 0)")
    trxs = [t for t in BinlogReader([Path(f) for f in files]).transactions() if t.tables][-20:]
    result = run_binreplay("replay", *files, *target.connection_flags(), "--from-backup", str(backup),
                           "--workers", "1", "--progress", "none")
    one_line_error(result, ExitCode.TARGET, f"one of the 20 transactions from {trxs[0].start} (GTID {trxs[0].gtid}) "
                   f"to {trxs[-1].start} (GTID {trxs[-1].gtid}), writing app.users", "Duplicate entry '14'")
    assert users_on(target) == 4                   # the batch rolled back whole
