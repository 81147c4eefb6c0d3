"""Faults around the replay: the control connection killed, the target server killed and restarted,
the target's disk full, a binlog file from another server, a target schema that does not match.
After each: the rerun ends identical to the source, nothing lost, nothing applied twice."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from binreplay.devtools.sandbox import create_sandbox
from binreplay.errors import ExitCode

from data import MYSQL_BINLOGS
from faultlab import (
    assert_exactly_once,
    resume_mark,
    start_replay,
    time_to_resume,
    wait_for_progress,
)
from helpers import assert_same_content, binlogs_from, replay_into, run_binreplay
from replays import (
    BASE,
    one_line_error,
    run_on,
    setup_backup,
    shop_after_backup,
    users_on,
)


def _wait_for_lock_holder(target, proc, timeout: float = 60) -> int | None:
    """The connection id of binreplay's control connection, or None once the process has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        holder = target.execute("SELECT IS_USED_LOCK('binreplay:binreplay')")[0][0]
        if holder:
            return int(holder)
        time.sleep(0.05)
    assert proc.poll() is not None, "binreplay never took its lock"
    return None


# --- the control connection ----------------------------------------------------------------------

def test_control_connection_killed_mid_replay(clean_servers, reliability) -> None:
    """The connection that holds the run's lock and writes the low-water mark is killed twice by the
    server while the replay applies: binreplay reconnects, takes the lock again, and finishes exactly."""
    source, target, start, files = shop_after_backup(clean_servers, 4000, ledger=True)
    # One worker and one transaction per commit: a replay of several seconds, so both kills land mid-way.
    proc, launched = start_replay(files, target, start, "--workers", "1", "--group-max-trx", "1",
                                  env={"BINREPLAY_CHECKPOINT_INTERVAL": "0.05"})
    seen: list[str] = []
    kills, applied = 0, 0
    for _ in range(2):
        progress = wait_for_progress(proc, seen, more_than=applied)
        assert progress is not None, "".join(seen)
        applied = progress["applied"]
        holder = _wait_for_lock_holder(target, proc)
        assert holder is not None, "".join(seen)
        target.execute(f"KILL CONNECTION {holder}")
        kills += 1
    _, rest = proc.communicate(timeout=300)
    err = "".join(seen) + rest
    assert proc.returncode == 0, err
    assert kills == 2 and err.count("reconnecting") >= 1
    lost, dup = assert_exactly_once(source, target, "shop.ledger")
    reliability.record("control connection killed (KILL CONNECTION)", injected=kills, lost=lost, duplicated=dup,
                       outcome="reconnected and finished in the same run; identical")


# --- the target server --------------------------------------------------------------------------

def test_target_server_killed_and_restarted(clean_servers, reliability) -> None:
    """kill -9 of the target mariadbd (durable settings) during a parallel replay, restart, rerun."""
    source, target, start, files = shop_after_backup(clean_servers, 6000, ledger=True)
    durable = target.execute("SELECT @@innodb_flush_log_at_trx_commit, @@innodb_doublewrite")[0]
    assert tuple(int(v) for v in durable) == (1, 1)
    proc, _ = start_replay(files, target, start, "--workers", "4", "--group-max-trx", "5",
                           "--reconnect-timeout", "3")
    seen: list[str] = []
    progress = wait_for_progress(proc, seen)
    assert progress is not None and progress["applied"] < 6001, "".join(seen)
    target.kill()
    _, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    # Unreachable target: a clean stop with the target error code (never a traceback).
    assert proc.returncode == ExitCode.TARGET, err
    assert "Traceback" not in err
    target.start()
    mark = resume_mark(target)
    t0 = time.time()
    rerun = replay_into(source, target, start, "--workers", "4")
    assert rerun.returncode == 0, rerun.stderr
    assert mark is None or resume_mark(target) >= mark
    lost, dup = assert_exactly_once(source, target, "shop.ledger")
    reliability.record("kill -9 of the target server, restart, rerun", injected=1, lost=lost, duplicated=dup,
                       resume_s=time_to_resume(rerun.stderr, t0),
                       outcome="exit 4, then the rerun resumed; identical")


# --- the target's disk --------------------------------------------------------------------------

@pytest.fixture
def small_disk_target(tmp_path: Path):
    """A target whose datadir lives on a small tmpfs (needs root to mount; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400M", "tmpfs", str(mount)], check=True,
                       capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    sandbox = None
    try:
        sandbox = create_sandbox(mount / "target", name="smalldisk", server_id=5, log_bin=False,
                                 options={"innodb-flush-method": "fsync", "innodb-log-file-size": "16M",
                                          "innodb-buffer-pool-size": "64M"},
                                 die_with_parent=True)
        yield sandbox, mount
    finally:
        if sandbox is not None:
            sandbox.stop()
            if sandbox.error_log.exists():  # kept for a post-mortem: the mount goes away
                shutil.copy(sandbox.error_log, tmp_path / "smalldisk.err")
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave_free: int) -> Path:
    ballast = mount / "ballast"
    free = shutil.disk_usage(mount).free - leave_free
    chunk = b"\0" * (1 << 20)
    with open(ballast, "wb") as f:
        for _ in range(max(0, free) >> 20):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    return ballast


def test_target_disk_full_stops_cleanly_then_resumes(clean_servers, small_disk_target, reliability) -> None:
    source, _ = clean_servers
    target, mount = small_disk_target
    start = setup_backup(source, target, *BASE, "CREATE TABLE app.blobs (id INT PRIMARY KEY, b LONGBLOB)")
    run_on(source, [f"INSERT INTO app.blobs VALUES ({i}, REPEAT(SHA2({i}, 256), 2000))" for i in range(400)]
           + [f"INSERT INTO app.events (user_id, kind, at) VALUES ({i}, 'k', NOW(6))" for i in range(200)])
    ballast = _fill(mount, leave_free=6 << 20)  # about 50 MB of rows must land on 6 MB of free space
    # A server that aborts is waited for (--reconnect-timeout); a short wait keeps the test short.
    full = replay_into(source, target, start, "--workers", "2", "--reconnect-timeout", "5")
    assert full.returncode == ExitCode.TARGET, full.stderr
    errors = [line for line in full.stderr.splitlines() if line.startswith("binreplay: error:")]
    assert len(errors) == 1 and "rerun the same command to resume" in errors[0], full.stderr
    assert "Traceback" not in full.stderr
    # MariaDB 10.11 either refuses the statement (ER_RECORD_FILE_FULL, named as a full disk) or
    # aborts when it cannot write the undo of the rollback ("[FATAL] InnoDB: Error (Out of disk
    # space) in rollback"); binreplay stops cleanly either way.
    crashed = not target.is_running() or "connect" in errors[0]
    assert crashed or "out of disk space" in errors[0], errors[0]
    ballast.unlink()
    if crashed:
        target.kill()
        target.start()  # crash recovery on the freed disk
    t0 = time.time()
    rerun = replay_into(source, target, start, "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert_same_content(source, target)
    reliability.record("target disk full (tmpfs datadir), space freed, rerun", injected=1,
                       resume_s=time_to_resume(rerun.stderr, t0),
                       outcome=("the server aborted on ENOSPC; binreplay exit 4, server restarted, rerun "
                                "resumed; identical" if crashed else
                                "exit 4 naming the full disk, then the rerun resumed; identical"))


# --- a file from another server -----------------------------------------------------------------

def _with_server_id(raw: bytes, server_id: int) -> bytes:
    """The file with its FORMAT_DESCRIPTION written by another server id (CRC recomputed)."""
    data = bytearray(raw)
    size = struct.unpack_from("<I", data, 4 + 9)[0]
    struct.pack_into("<I", data, 4 + 5, server_id)
    struct.pack_into("<I", data, 4 + size - 4, zlib.crc32(bytes(data[4:4 + size - 4])))
    return bytes(data)


def test_file_from_another_server_is_refused(clean_servers, tmp_path: Path) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('x1', 'x', 1)"])
    source.execute("FLUSH BINARY LOGS")
    run_on(source, ["INSERT INTO app.users (email, name, score) VALUES ('x2', 'x', 2)"])
    files = [Path(f) for f in binlogs_from(source, start[0])]
    copies = []
    for i, f in enumerate(files):
        copy = tmp_path / f.name
        copy.write_bytes(_with_server_id(f.read_bytes(), 77) if i == 1 else f.read_bytes())
        copies.append(str(copy))
    r = run_binreplay("replay", *copies, *target.connection_flags(), "--start-position", str(start[1]),
                      "--progress", "none")
    one_line_error(r, ExitCode.BAD_INPUT, "server id 77", "not one server's binlog sequence")
    assert users_on(target) == 3
    # A MySQL file given as the next file of a MariaDB sequence: refused the same way.
    mysql = next(MYSQL_BINLOGS.glob("mc-8.0.26-bit-full-meta.*"))
    fake = tmp_path / "other" / files[1].name
    fake.parent.mkdir()
    fake.write_bytes(mysql.read_bytes())
    shutil.copy(files[0], fake.parent / files[0].name)
    r = run_binreplay("replay", str(fake.parent / files[0].name), str(fake), *target.connection_flags(),
                      "--start-position", str(start[1]), "--progress", "none")
    one_line_error(r, ExitCode.BAD_INPUT, "mysql server id", "not one server's binlog sequence")
    assert users_on(target) == 3


# --- a target that does not match the binlog ----------------------------------------------------

@pytest.mark.parametrize("change,fragment", [
    ("DROP TABLE app.events", "has no such table"),
    ("ALTER TABLE app.events ADD COLUMN extra INT", "the binlog has 4 columns, the target 5"),
    ("ALTER TABLE app.events DROP COLUMN at", "the binlog has 4 columns, the target 3"),
])
def test_target_schema_not_matching_the_binlog(clean_servers, change: str, fragment: str) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('u{i}', 'x', {i})" for i in range(5)]
           + ["BEGIN", "INSERT INTO app.users (email, name, score) VALUES ('in-trx', 'x', 0)",
              "INSERT INTO app.events (user_id, kind, at) VALUES (1, 'k', NOW(6))", "COMMIT"])
    target.execute(change)
    r = replay_into(source, target, start, "--progress", "none")
    lines = [line for line in r.stderr.splitlines() if line.startswith("binreplay: error:")]
    assert r.returncode == ExitCode.SCHEMA_MISMATCH, r.stderr
    assert len(lines) == 1 and "app`.`events" in lines[0] and fragment in lines[0], r.stderr
    # Everything before it was applied and recorded; nothing of the mismatched transaction was.
    assert users_on(target) == 3 + 5
    assert not target.execute("SELECT 1 FROM app.users WHERE email='in-trx'")


def test_table_created_by_create_select_is_found(clean_servers) -> None:
    """CREATE TABLE ... SELECT is a mixed transaction (a statement plus row events), not a standalone
    DDL: the schema check must still find the new table for the rows that follow (no false exit 9)."""
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('c{i}', 'x', {i})" for i in range(5)]
           + ["CREATE TABLE app.top (id INT PRIMARY KEY, score INT) SELECT id, score FROM app.users WHERE score > 2"]
           + [f"INSERT INTO app.top VALUES ({100 + i}, {i})" for i in range(5)]
           + ["UPDATE app.top SET score = score * 2"])
    for workers in ("1", "2"):
        # Each round undoes the one before (below): the target is as restored, which --restart is told.
        r = replay_into(source, target, start, "--workers", workers, "--progress", "none", "--restart",
                        "--target-restored")
        assert r.returncode == 0, r.stderr
        assert_same_content(source, target)
        target.execute("DROP TABLE app.top")
        target.execute("DELETE FROM app.users WHERE email REGEXP '^c[0-9]$'")
