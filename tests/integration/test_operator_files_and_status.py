"""Which binlog files a command reads, and what `status` says a target holds (issue 14, items 2 and 4),
run as a DBA runs them: the command, its output, its exit code, and the target by content."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from binreplay.source.reader import BinlogReader

from helpers import assert_same_content, binlogs_from, run_binreplay
from replays import BASE, ok, run_on, setup_backup, summary_of, users_on


def copied_with_an_absolute_index(source, first: str, folder: Path) -> Path:
    """The runbook's copy step on a Debian-style server: its binlogs from `first` on copied into
    `folder` with an index that lists the server's own files by absolute path."""
    folder.mkdir()
    files = [Path(f) for f in binlogs_from(source, first)]
    for f in files:
        shutil.copy2(f, folder / f.name)
    index = folder / "mysql-bin.index"
    index.write_text("".join(f"{f.resolve()}\n" for f in files))
    return index


def test_an_index_of_absolute_paths_reads_the_copies_beside_it(clean_servers, tmp_path: Path) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('ix{i}', 'x', {i})" for i in range(10)])
    index = copied_with_an_absolute_index(source, start[0], tmp_path / "recovery")
    # After the copy the server goes on and purges what was copied: its listed files are gone.
    run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('late', 'x', 0)"])
    source.execute("FLUSH BINARY LOGS")
    source.execute(f"PURGE BINARY LOGS TO '{source.binlog_files()[-1].name}'")
    copied = sorted(p.name for p in (tmp_path / "recovery").glob("*.0*"))
    folder = str((tmp_path / "recovery").absolute())

    plan = run_binreplay("plan", str(index), "--start-position", str(start[1]))
    ok(plan)
    [read_from] = [line for line in plan.stdout.splitlines() if "read from:" in line]
    assert folder in read_from and copied[0] in read_from, plan.stdout
    plan_json = json.loads(run_binreplay("plan", str(index), "--start-position", str(start[1]), "--format",
                                         "json").stdout)
    assert plan_json["files"] == [str(tmp_path / "recovery" / name) for name in copied]
    assert folder in plan_json["files_used"]

    replay = run_binreplay("replay", str(index), *target.connection_flags(), "--start-position", str(start[1]),
                           "--progress", "json")
    ok(replay)
    assert folder in summary_of(replay)["binlog_files"]
    assert users_on(target) == 13                    # as of the copy: not the row written after it
    text = run_binreplay("replay", str(index), *target.connection_flags(), "--start-position", str(start[1]),
                         "--progress", "plain")
    ok(text)
    assert f"binlog files read: {copied[0]}" in text.stderr and folder in text.stderr, text.stderr


def test_an_index_entry_not_copied_is_read_where_the_server_wrote_it_and_said(clean_servers, tmp_path: Path) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('one', 'x', 1)"])
    source.execute("FLUSH BINARY LOGS")
    run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('two', 'x', 2)"])
    index = copied_with_an_absolute_index(source, start[0], tmp_path / "recovery")
    missing = sorted((tmp_path / "recovery").glob("*.0*"))[-2]   # the one with the second insert
    missing.unlink()                                 # not copied: the server still has it
    replay = run_binreplay("replay", str(index), *target.connection_flags(), "--start-position", str(start[1]),
                           "--progress", "json")
    ok(replay)
    listed = Path(next(line for line in index.read_text().splitlines() if line.endswith(missing.name)))
    assert f"lists {listed}, which is not beside it" in replay.stderr
    binlog_files = summary_of(replay)["binlog_files"]
    assert str(missing.parent) in binlog_files and str(listed.parent) in binlog_files
    assert_same_content(source, target, ["app"])


def test_status_shows_the_latest_run_and_what_the_target_holds(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('st{i}', 'x', {i})" for i in range(20)])
    files = binlogs_from(source, start[0])
    trxs = list(BinlogReader([Path(f) for f in files], start_pos=start[1]).transactions())
    tenth, last = trxs[9], trxs[-1]

    def replay(*extra: str):
        return run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                             "--progress", "none", *extra)

    ok(replay("--stop-gtid", str(tenth.gtid)))
    ok(replay())                                     # extended to the end: the same replay, resumed
    assert users_on(target) == 23
    result = run_binreplay("status", *target.connection_flags(), "--format", "json")   # no binlogs given
    ok(result)
    st = json.loads(result.stdout)
    assert st["state"] == "complete"
    assert st["arguments"]["stop_gtid"] is None       # the latest run's arguments, not the first one's
    assert st["low_water_mark"] == str(last.end)
    assert st["mark_transaction"]["gtid"] == str(last.gtid) and st["mark_transaction"]["source_time"]
    text = run_binreplay("status", *target.connection_flags())
    ok(text)
    assert f"last applied (at the mark): {last.end} GTID {last.gtid}, source time" in text.stdout, text.stdout
    assert "stop_gtid" not in text.stdout
