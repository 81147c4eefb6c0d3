"""--from-backup: the start point comes from each backup tool's metadata."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers import assert_same_content, binlogs_from, run_binreplay, snapshot_to_target
from replays import BASE, run_on


def _after_backup(source) -> None:
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('fb{i}', 'x', {i})" for i in range(10)]
           + ["UPDATE app.users SET score = score + 100", "DELETE FROM app.users WHERE id = 2"])


def _replay(source, target, backup: Path) -> None:
    files = binlogs_from(source, "")
    r = run_binreplay("replay", *files, *target.connection_flags(), "--from-backup", str(backup),
                      "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert_same_content(source, target)


def test_from_a_real_mariadb_dump(clean_servers, tmp_path: Path) -> None:
    source, target = clean_servers
    for sql in BASE:
        source.execute(sql)
    source.execute("FLUSH BINARY LOGS")  # the backup point is not in the first file
    dump = tmp_path / "backup.sql"
    with open(dump, "wb") as out:
        subprocess.run(["mariadb-dump", *source.client_args(), "--single-transaction", "--master-data=2",
                        "--gtid", "--databases", "app"], stdout=out, check=True)
    with open(dump, "rb") as f:
        subprocess.run(["mariadb", *target.client_args()], stdin=f, check=True)
    _after_backup(source)
    _replay(source, target, dump)


@pytest.mark.parametrize("fmt", ["xtrabackup", "mydumper-old", "mydumper-ini", "gtid-only"])
def test_from_metadata_files(clean_servers, tmp_path: Path, fmt: str) -> None:
    source, target = clean_servers
    for sql in BASE:
        source.execute(sql)
    file, pos = snapshot_to_target(source, target, ["app"])
    gtid = source.execute("SELECT @@gtid_binlog_pos")[0][0]
    if fmt == "xtrabackup":
        meta = tmp_path / "xtrabackup_binlog_info"
        meta.write_text(f"{file}\t{pos}\t{gtid}\n")
    elif fmt == "mydumper-old":
        meta = tmp_path / "metadata"
        meta.write_text(f"Started dump at: 2026-11-24 10:00:00\nSHOW MASTER STATUS:\n\tLog: {file}\n"
                        f"\tPos: {pos}\n\tGTID:{gtid}\n\nFinished dump at: 2026-11-24 10:00:01\n")
    elif fmt == "mydumper-ini":
        meta = tmp_path / "metadata"
        meta.write_text(f"[config]\nquote_character = BACKTICK\n\n[source]\n# Channel_Name = ''\n"
                        f"File = {file}\nPosition = {pos}\nExecuted_Gtid_Set = {gtid}\n")
    else:
        meta = tmp_path / "gtid-only.sql"
        meta.write_text(f"-- MariaDB dump\n-- SET GLOBAL gtid_slave_pos='{gtid}';\n")
    _after_backup(source)
    _replay(source, target, meta)


def test_backup_file_not_among_the_binlogs(clean_servers, tmp_path: Path) -> None:
    source, target = clean_servers
    for sql in BASE:
        source.execute(sql)
    meta = tmp_path / "xtrabackup_binlog_info"
    meta.write_text("other-bin.000042\t1234\t\n")
    r = run_binreplay("replay", *binlogs_from(source, ""), *target.connection_flags(), "--from-backup", str(meta))
    assert r.returncode == 3 and "other-bin.000042" in r.stderr
