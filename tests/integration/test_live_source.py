"""Binlogs streamed from a live source: `binreplay fetch` and `binreplay replay --source-host`.

Against the real session servers: fetched files are compared byte for byte with the source's own
files in its datadir, replays are compared with the source by content, and the replication
connection is killed on the source (and the source restarted) while it streams.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from binreplay.devtools.compare import compare_servers
from binreplay.devtools.sandbox import Sandbox
from binreplay.errors import ExitCode

from helpers import assert_same_content, run_binreplay, snapshot_to_target

SCHEMA = "live"


def _source_flags(source: Sandbox, user: str = "root") -> list[str]:
    return ["--source-socket", str(source.socket), "--source-user", user]


def _create_schema(source: Sandbox) -> None:
    source.execute(f"CREATE DATABASE {SCHEMA}")
    source.execute(f"CREATE TABLE {SCHEMA}.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(40), n INT)")
    source.execute(f"CREATE TABLE {SCHEMA}.log (id INT PRIMARY KEY, note TEXT)")


def _write(source: Sandbox, n: int, start: int = 0, rotate_every: int | None = None) -> None:
    """n transactions of different shapes, with binlog rotations."""
    for i in range(start, start + n):
        source.execute(f"INSERT INTO {SCHEMA}.t (v, n) VALUES ('row {i}', {i})")
        if i % 3 == 0:
            source.execute(f"UPDATE {SCHEMA}.t SET n = n + 1 WHERE id % 7 = {i % 7}")
        if i % 5 == 0:
            source.execute(f"INSERT INTO {SCHEMA}.log VALUES ({i}, REPEAT('x', {i % 500}))")
        if rotate_every and i % rotate_every == rotate_every - 1:
            source.execute("FLUSH BINARY LOGS")


def _assert_identical(source: Sandbox, out: Path, first: str | None = None) -> None:
    """Every source binlog from `first` on is in `out`, byte for byte."""
    server = [p for p in source.binlog_files() if first is None or p.name >= first]
    fetched = sorted(p.name for p in out.iterdir() if p.name[-1].isdigit())
    assert fetched == [p.name for p in server]
    for p in server:
        assert (out / p.name).read_bytes() == p.read_bytes(), f"{p.name} differs from the source's file"


def _keep_writing(source: Sandbox, stop: threading.Event) -> None:
    with source.connect() as conn, conn.cursor() as cur:
        i = 0
        while not stop.is_set():
            cur.execute("BEGIN")
            cur.execute(f"INSERT INTO {SCHEMA}.log VALUES ({100000 + i}, REPEAT('y', {i % 900}))")
            cur.execute(f"UPDATE {SCHEMA}.t SET n = n - 1 WHERE id % 5 = {i % 5}")
            cur.execute("COMMIT")
            if i % 50 == 49:
                cur.execute("FLUSH BINARY LOGS")
            i += 1


def _binlogs_settled(source: Sandbox, timeout: float = 30.0) -> None:
    """After a rotation MariaDB writes the new file's own BINLOG_CHECKPOINT event later, once InnoDB has
    made the previous file's commits durable (measured here: ~0.9 s, its once-a-second log flush). A
    fetch taken before that is a correct copy of a shorter file, so wait until the active file's last
    checkpoint names the file itself: after that nothing more is written to it without new commits."""
    active = source.master_status()[0]
    deadline = time.monotonic() + timeout
    while True:
        checkpoints = [row[5] for row in source.execute(f"SHOW BINLOG EVENTS IN '{active}'")
                       if row[2] == "Binlog_checkpoint"]
        if checkpoints and checkpoints[-1] == active:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{active}: no BINLOG_CHECKPOINT naming itself after {timeout} s ({checkpoints})")
        time.sleep(0.05)


def _fetch_and_compare(source: Sandbox, out: Path) -> None:
    _binlogs_settled(source)
    r = run_binreplay("fetch", *_source_flags(source), "--out", str(out))
    assert r.returncode == 0, r.stderr
    _assert_identical(source, out)


def _dump_threads(source: Sandbox) -> list[int]:
    return [int(r[0]) for r in source.execute(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")]


def _wait_for(condition, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "binreplay", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def _running(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        raise AssertionError(f"binreplay exited with {proc.returncode}: {proc.communicate()[1]}")


def _rows(sb: Sandbox) -> int:
    try:
        return int(sb.execute(f"SELECT COUNT(*) FROM {SCHEMA}.t")[0][0])
    except Exception:  # noqa: BLE001 - not created yet on the target
        return -1


def _same_content(source: Sandbox, target: Sandbox) -> bool:
    with source.connect() as ref, target.connect() as tgt:
        return not compare_servers(ref, tgt, schemas=[SCHEMA])


def test_fetch_is_byte_identical_and_extends(clean_servers, tmp_path):
    source, _ = clean_servers
    _create_schema(source)
    _write(source, 60, rotate_every=20)
    out = tmp_path / "spool"
    _fetch_and_compare(source, out)
    # A rerun fetches only what is new (the active file grew, and more files came).
    _write(source, 30, start=60, rotate_every=12)
    _fetch_and_compare(source, out)


def test_fetch_killed_midstream_resumes_without_gaps_or_duplicates(clean_servers, tmp_path):
    source, _ = clean_servers
    _create_schema(source)
    first = source.master_status()[0]
    out = tmp_path / "spool"
    proc = _spawn("fetch", *_source_flags(source), "--out", str(out), "--stop-never")
    try:
        _wait_for(lambda: (out / first).exists(), what="the fetch to start")
        _write(source, 40, rotate_every=15)
        proc.kill()   # kill -9 while it streams
        proc.wait(10)
    finally:
        proc.kill()
    # A write torn by the kill: the last file ends in the middle of an event.
    last = sorted(out.iterdir())[-1]
    with open(last, "r+b") as f:
        f.truncate(max(300, last.stat().st_size - 17))
    _write(source, 20, start=40)
    _fetch_and_compare(source, out)


def test_replay_from_source_equals_source(clean_servers, tmp_path):
    source, target = clean_servers
    _create_schema(source)
    _write(source, 20)
    start = snapshot_to_target(source, target, [SCHEMA])
    _write(source, 80, start=20, rotate_every=25)
    source.execute(f"ALTER TABLE {SCHEMA}.t ADD COLUMN extra INT DEFAULT 7")
    _write(source, 20, start=100)
    r = run_binreplay("replay", *_source_flags(source), "--source-binlog", start[0], "--start-position",
                      str(start[1]), "--spool-dir", str(tmp_path / "spool"), *target.connection_flags(),
                      "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert_same_content(source, target, [SCHEMA])
    _assert_identical(source, tmp_path / "spool", start[0])


def test_replay_from_source_by_gtid_position(clean_servers, tmp_path):
    source, target = clean_servers
    _create_schema(source)
    _write(source, 30, rotate_every=10)
    file, pos = snapshot_to_target(source, target, [SCHEMA])
    gtid = source.execute("SELECT BINLOG_GTID_POS(%s, %s)", file, pos)[0][0]
    _write(source, 40, start=30, rotate_every=15)
    r = run_binreplay("replay", *_source_flags(source), "--start-gtid", gtid, "--spool-dir",
                      str(tmp_path / "spool"), *target.connection_flags(), "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert_same_content(source, target, [SCHEMA])


def test_follow_survives_killed_connections_and_a_source_restart(clean_servers, tmp_path):
    source, target = clean_servers
    _create_schema(source)
    start = snapshot_to_target(source, target, [SCHEMA])
    spool = tmp_path / "spool"
    args = ["replay", *_source_flags(source), "--source-binlog", start[0], "--start-position", str(start[1]),
            "--spool-dir", str(spool), *target.connection_flags(), "--progress", "none", "--workers", "2"]
    proc = _spawn(*args, "--follow")
    try:
        _write(source, 30)
        written = 30
        # KILL the replication connection on the source again and again while another session
        # keeps committing multi-statement transactions and rotating the binlog.
        stop = threading.Event()
        writer = threading.Thread(target=_keep_writing, args=(source, stop))
        writer.start()
        try:
            for _ in range(5):
                _wait_for(lambda: _running(proc) or bool(_dump_threads(source)), what="the Binlog Dump thread")
                for thread_id in _dump_threads(source):
                    source.execute(f"KILL {thread_id}")
                time.sleep(0.3)
        finally:
            stop.set()
            writer.join()
        source.stop()     # the binlog ends with a STOP event; the source comes back with a new file
        source.start()
        _write(source, 30, start=written)
        written += 30
        # Whole content, not a row count: parallel workers may commit the last inserts into t before
        # earlier transactions on other rows.
        _wait_for(lambda: _running(proc) or _same_content(source, target), timeout=60,
                  what="the follow to catch up")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "lost" in err   # it did reconnect (and said so)
    finally:
        proc.kill()
    assert_same_content(source, target, [SCHEMA])
    # Written after the follow stopped: a rerun (without --follow) resumes and applies exactly these.
    _write(source, 25, start=written)
    r = run_binreplay(*args)
    assert r.returncode == 0, r.stderr
    assert_same_content(source, target, [SCHEMA])
    _assert_identical(source, spool, start[0])


def test_follow_ends_by_itself_at_the_stop_gtid(clean_servers, tmp_path):
    source, target = clean_servers
    _create_schema(source)
    file, pos = snapshot_to_target(source, target, [SCHEMA])
    domain, server_id, seq = map(int, source.execute("SELECT @@gtid_binlog_pos")[0][0].split("-"))
    proc = _spawn("replay", *_source_flags(source), "--source-binlog", file, "--start-position", str(pos),
                  "--spool-dir", str(tmp_path / "spool"), *target.connection_flags(), "--progress", "none",
                  "--follow", "--stop-gtid", f"{domain}-{server_id}-{seq + 25}")
    try:
        time.sleep(0.5)
        for i in range(40):   # one transaction each: the stop GTID is the 25th
            source.execute(f"INSERT INTO {SCHEMA}.t (v, n) VALUES ('after {i}', {i})")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stop-gtid" in err
    finally:
        proc.kill()
    query = f"SELECT id, v, n FROM {SCHEMA}.t ORDER BY id"
    assert target.execute(query) == source.execute(query)[:25]


def test_follow_rerun_after_a_crash_past_the_stop_gtid_finishes(clean_servers, tmp_path):
    """The first run fetched up to the stop GTID and was killed while applying: the rerun resumes
    after the spool's end, where the stop GTID never comes again, and must still finish."""
    source, target = clean_servers
    _create_schema(source)
    file, pos = snapshot_to_target(source, target, [SCHEMA])
    domain, server_id, seq = map(int, source.execute("SELECT @@gtid_binlog_pos")[0][0].split("-"))
    for i in range(40):   # one transaction each: the stop GTID is the 25th
        source.execute(f"INSERT INTO {SCHEMA}.t (v, n) VALUES ('after {i}', {i})")
    spool = tmp_path / "spool"
    args = ["replay", *_source_flags(source), "--source-binlog", file, "--start-position", str(pos),
            "--spool-dir", str(spool), *target.connection_flags(), "--progress", "none", "--workers", "2",
            "--no-group-commit", "--follow", "--stop-gtid", f"{domain}-{server_id}-{seq + 25}"]
    r = run_binreplay(*args, env={"BINREPLAY_CRASH_AT": "after-commit:3"}, timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr
    applied = _rows(target)
    assert 3 <= applied < 25, applied   # killed mid-apply, after the fetch had ended at the stop GTID
    spooled = {p.name: p.read_bytes() for p in spool.iterdir()}
    r = run_binreplay(*args, timeout=60)
    assert r.returncode == 0, r.stderr
    query = f"SELECT id, v, n FROM {SCHEMA}.t ORDER BY id"
    assert target.execute(query) == source.execute(query)[:25]
    # The rerun found the stop in the spool and fetched nothing more.
    assert {p.name: p.read_bytes() for p in spool.iterdir()} == spooled


def test_follow_rerun_after_sigterm_applies_what_was_spooled(clean_servers, tmp_path):
    """SIGTERM while a follow run waits for the stop GTID: the rerun resumes the spool and goes on to
    the stop GTID as it arrives, applying exactly up to it."""
    source, target = clean_servers
    _create_schema(source)
    file, pos = snapshot_to_target(source, target, [SCHEMA])
    domain, server_id, seq = map(int, source.execute("SELECT @@gtid_binlog_pos")[0][0].split("-"))
    spool = tmp_path / "spool"
    args = ["replay", *_source_flags(source), "--source-binlog", file, "--start-position", str(pos),
            "--spool-dir", str(spool), *target.connection_flags(), "--progress", "none",
            "--follow", "--stop-gtid", f"{domain}-{server_id}-{seq + 25}"]
    proc = _spawn(*args)
    try:
        for i in range(10):
            source.execute(f"INSERT INTO {SCHEMA}.t (v, n) VALUES ('before {i}', {i})")
        last = source.binlog_files()[-1]
        _wait_for(lambda: _running(proc) or (spool / last.name).stat().st_size == last.stat().st_size
                  if (spool / last.name).exists() else False, what="the fetch to catch up")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
    finally:
        proc.kill()
    assert _rows(target) == 0   # rounds wait for the stop GTID, so nothing was applied yet
    proc = _spawn(*args)
    try:
        for i in range(30):
            source.execute(f"INSERT INTO {SCHEMA}.t (v, n) VALUES ('after {i}', {i})")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
    query = f"SELECT id, v, n FROM {SCHEMA}.t ORDER BY id"
    assert target.execute(query) == source.execute(query)[:25]


def test_follow_rerun_applies_the_spool_without_waiting_for_new_events(clean_servers, tmp_path):
    """Killed after fetching but before applying everything: with the source idle, the rerun must
    still apply what the spool holds (not wait for the next event to start a round)."""
    source, target = clean_servers
    _create_schema(source)
    start = snapshot_to_target(source, target, [SCHEMA])
    _write(source, 20)
    args = ["replay", *_source_flags(source), "--source-binlog", start[0], "--start-position", str(start[1]),
            "--spool-dir", str(tmp_path / "spool"), *target.connection_flags(), "--progress", "none",
            "--no-group-commit", "--follow"]
    r = run_binreplay(*args, env={"BINREPLAY_CRASH_AT": "after-commit:5"}, timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr   # no stop point: only the crash point ends it
    assert 0 < _rows(target) < _rows(source)
    proc = _spawn(*args)
    try:
        expected = _rows(source)
        _wait_for(lambda: _running(proc) or _rows(target) == expected, what="the rerun to apply the spool")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
    finally:
        proc.kill()
    assert_same_content(source, target, [SCHEMA])


def test_unwritable_spool_is_one_line_and_exit_2(clean_servers, tmp_path):
    source, target = clean_servers
    _create_schema(source)
    file, pos = snapshot_to_target(source, target, [SCHEMA])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    r = run_binreplay("fetch", *_source_flags(source), "--out", str(blocker / "spool"))
    assert r.returncode == 2, r.stderr
    assert "cannot create spool" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_binreplay("replay", *_source_flags(source), "--source-binlog", file, "--start-position", str(pos),
                      "--spool-dir", str(blocker), *target.connection_flags(), "--progress", "none")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "spool" in r.stderr, r.stderr
    # A spool file the fetch cannot open for writing: a directory in its place.
    spool = tmp_path / "spool"
    (spool / file).mkdir(parents=True)
    r = run_binreplay("fetch", *_source_flags(source), "--out", str(spool), "--start-file", file)
    assert r.returncode == 2, r.stderr
    assert "cannot write spool" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _rows(target) == 0   # nothing applied


def test_source_errors_have_their_exit_codes(clean_servers, tmp_path):
    source, _ = clean_servers
    out = str(tmp_path / "spool")
    r = run_binreplay("fetch", *_source_flags(source), "--out", out, "--start-file", "nosuch-bin.000001")
    assert r.returncode == 3 and "not on the source" in r.stderr, r.stderr
    r = run_binreplay("fetch", "--source-socket", str(tmp_path / "none.sock"), "--source-user", "root", "--out", out)
    assert r.returncode == ExitCode.SOURCE and "source" in r.stderr, r.stderr
    source.execute("CREATE USER 'nobinlog'@'localhost' IDENTIFIED BY 'pw'")
    r = run_binreplay("fetch", *_source_flags(source, "nobinlog"), "--source-password=pw", "--out", out)
    assert r.returncode == 5 and "BINLOG MONITOR" in r.stderr, r.stderr
    source.execute("GRANT BINLOG MONITOR ON *.* TO 'nobinlog'@'localhost'")
    r = run_binreplay("fetch", *_source_flags(source, "nobinlog"), "--source-password=pw", "--out", out)
    assert r.returncode == 5 and "REPLICATION SLAVE" in r.stderr, r.stderr
    source.execute("GRANT REPLICATION SLAVE ON *.* TO 'nobinlog'@'localhost'")
    r = run_binreplay("fetch", *_source_flags(source, "nobinlog"), "--source-password=pw", "--out", out)
    assert r.returncode == 0, r.stderr
    _assert_identical(source, Path(out))


@pytest.mark.parametrize("flags", [["--follow", "--stop-position", "100"], []])
def test_live_replay_usage_errors(clean_servers, tmp_path, flags):
    source, target = clean_servers
    r = run_binreplay("replay", *_source_flags(source), *target.connection_flags(), "--spool-dir",
                      str(tmp_path), *flags)
    assert r.returncode == 2, r.stderr


def test_follow_rounds_leave_a_span_with_temporary_tables_open_to_the_next_round(clean_servers, tmp_path):
    """With --follow, a round that ends while a source session holds a temporary table does not apply
    that span (its sessions end with the round, and the table with them): the mark stays before the
    CREATE, and a later round applies the span whole once the table is dropped."""
    source, target = clean_servers
    _create_schema(source)
    start = snapshot_to_target(source, target, [SCHEMA])
    args = ["replay", *_source_flags(source), "--source-binlog", start[0], "--start-position", str(start[1]),
            "--spool-dir", str(tmp_path / "spool"), *target.connection_flags(), "--progress", "none",
            "--workers", "2"]
    _write(source, 5)
    proc = _spawn(*args, "--follow")
    try:
        _wait_for(lambda: _running(proc) or _same_content(source, target), what="the follow to catch up")
        with source.connect(SCHEMA) as a, a.cursor() as ca:
            ca.execute("SET SESSION binlog_format = 'STATEMENT'")
            ca.execute("CREATE TEMPORARY TABLE picked (id INT, n INT)")
            ca.execute("INSERT INTO picked SELECT id, n FROM t WHERE id <= 3")
            source.execute(f"INSERT INTO {SCHEMA}.log VALUES (900, 'during the span')")
            time.sleep(3)   # rounds come and go meanwhile: none may apply the open span
            _running(proc)
            assert target.execute(f"SELECT COUNT(*) FROM {SCHEMA}.log WHERE id = 900") == [(0,)]
            ca.execute(f"INSERT INTO {SCHEMA}.log SELECT 1000 + id, CONCAT('picked ', n) FROM picked")
            ca.execute("DROP TEMPORARY TABLE picked")
        _write(source, 3, start=5)
        _wait_for(lambda: _running(proc) or _same_content(source, target), timeout=60,
                  what="the follow to apply the span")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "end of the input" not in err, err
    finally:
        proc.kill()
    assert_same_content(source, target, [SCHEMA])
    assert target.execute(f"SELECT COUNT(*) FROM {SCHEMA}.log WHERE id > 1000") == [(3,)]
