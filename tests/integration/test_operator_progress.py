"""Progress that is right (issue 14, item 10): measured over the selected range (start to stop
point) and carried over on resume, the useful fields first on an 80-column terminal, --follow
counting everything it applied, and `fetch` showing what it has fetched."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from binreplay.source.reader import BinlogReader

from helpers import assert_same_content, binlogs_from, run_binreplay, snapshot_to_target
from replays import BASE, ok, run_on, setup_backup, shop_after_backup, summary_of


def _records(stderr: str, kind: str) -> list[dict]:
    return [r for r in (json.loads(line) for line in stderr.splitlines() if line.startswith("{")) if r["type"] == kind]


def test_progress_is_measured_over_the_selected_range_and_carried_over_on_resume(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('p{i}', 'x', {i})" for i in range(40)])
    files = binlogs_from(source, start[0])
    trxs = list(BinlogReader([Path(f) for f in files], start_pos=start[1]).transactions())
    assert len(trxs) == 40 and trxs[-1].file_index == 0
    stop = trxs[19].end_pos
    flags = (*target.connection_flags(), "--start-position", str(start[1]), "--progress", "json", "--workers", "1")

    half = run_binreplay("replay", files[0], *flags, "--stop-position", str(stop))   # a position in the last file
    ok(half)
    (begin,) = _records(half.stderr, "start")
    assert begin["total_bytes"] == stop - start[1]            # the range, not the files
    assert begin["total_transactions"] == 20
    summary = summary_of(half)
    assert summary["bytes_done"] == summary["bytes_total"] == stop - start[1]
    assert summary["transactions_done"] == 20

    rest = run_binreplay("replay", *files, *flags)
    ok(rest)
    (begin,) = _records(rest.stderr, "start")
    whole = sum(Path(f).stat().st_size for f in files) - start[1]
    assert begin["total_bytes"] == whole and begin["total_transactions"] == 40
    progress = _records(rest.stderr, "progress")
    assert progress, rest.stderr
    # What the first run did counts as done from the first record on, in bytes and in transactions alike.
    assert progress[0]["bytes_done"] >= stop - start[1] and progress[0]["transactions_done"] >= 20
    for r in progress:
        assert r["transactions_done"] <= r["transactions_total"] == 40
        assert r["bytes_done"] <= r["bytes_total"] == whole
    summary = summary_of(rest)
    assert summary["applied"] == 20 and summary["transactions_done"] == 40
    assert summary["bytes_done"] == summary["bytes_total"] == whole
    assert_same_content(source, target)


def _on_a_terminal(args: list[str], columns: int) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "binreplay", *args], stdin=slave, stdout=slave, stderr=slave,
                            env={**os.environ, "COLUMNS": str(columns)})
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), out.decode(errors="replace")


def test_the_bar_puts_the_useful_fields_first_at_80_columns(clean_servers) -> None:
    source, target, start, files = shop_after_backup(clean_servers, 3000)
    code, text = _on_a_terminal(["replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                                 "--workers", "2"], 80)
    assert code == 0, text[-3000:]
    bars = [seg for seg in re.split(r"[\r\n]+", re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text))
            if seg.startswith("replay:")]
    assert bars, text[-2000:]
    for bar in bars:
        assert len(bar) <= 80, bar
    # Percentage, bytes, time left, then the source time a point-in-time restore is about.
    assert any(re.match(r"replay: +\d+%\|.*\| [\d.]+[kMG]?/[\d.]+[kMG]? \[[\d:?]+ left, .*src 20", bar)
               for bar in bars), bars[-5:]
    assert "binreplay: target socket" in text and "binreplay: complete: 3000 transactions applied" in text
    assert_same_content(source, target)


def test_follow_counts_everything_it_applied(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    source.execute("CREATE DATABASE live")
    source.execute("CREATE TABLE live.t (id INT PRIMARY KEY AUTO_INCREMENT, n INT)")
    start = snapshot_to_target(source, target, ["live"])
    proc = subprocess.Popen([sys.executable, "-m", "binreplay", "replay", "--source-socket", str(source.socket),
                             "--source-user", "root", "--source-binlog", start[0], "--start-position", str(start[1]),
                             "--spool-dir", str(tmp_path / "spool"), *target.connection_flags(), "--follow",
                             "--progress", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = 0
    try:
        for _burst in range(4):          # several rounds, each applying what arrived
            for _ in range(15):
                source.execute("INSERT INTO live.t (n) VALUES (1)")
                written += 1
            time.sleep(1.5)
        deadline = time.monotonic() + 60
        while target.execute("SELECT COUNT(*) FROM live.t")[0][0] != written and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)                   # the round that applied the last rows says so once it is done
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    applied = [r["applied"] for r in _records(err, "progress")]
    assert applied == sorted(applied), applied          # the follow's count, not each round's
    assert applied[-1] == written, (applied, err[-2000:])
    assert_same_content(source, target, ["live"])


def test_fetch_shows_what_it_has_fetched(clean_servers, tmp_path) -> None:
    source, _target = clean_servers
    source.execute("CREATE DATABASE f")
    source.execute("CREATE TABLE f.t (id INT PRIMARY KEY AUTO_INCREMENT, pad VARCHAR(200))")
    first = source.binlog_files()[0].name
    proc = subprocess.Popen([sys.executable, "-m", "binreplay", "fetch", "--source-socket", str(source.socket),
                             "--source-user", "root", "--out", str(tmp_path / "spool"), "--start-file", first,
                             "--stop-never", "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def write() -> None:
        with source.connect() as conn, conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("INSERT INTO f.t (pad) VALUES (REPEAT('x', 200))")
                time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    spool = tmp_path / "spool"
    try:
        deadline = time.monotonic() + 60
        while not (spool.is_dir() and any(spool.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.1)             # the fetch is connected and writing (a loaded machine starts it slowly)
        time.sleep(3.5)
    finally:
        stop.set()
        writer.join()
    time.sleep(1.2)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    shown = _records(err, "fetch")
    assert len(shown) >= 2, err[-2000:]               # about once a second while it runs
    assert [r["bytes"] for r in shown] == sorted(r["bytes"] for r in shown) and shown[-1]["events"] > shown[0]["events"]
    assert shown[-1]["position"].startswith(source.binlog_files()[-1].name)
