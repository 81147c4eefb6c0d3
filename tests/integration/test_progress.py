"""What a replay tells the operator: JSON progress lines with documented keys, a summary with
retries and parallelism, and the tqdm bar (over bytes, one line per worker with -v) on a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

from helpers import assert_same_content, replay_into
from replays import shop_after_backup

PROGRESS_KEYS = {"type", "time", "transactions_done", "transactions_total", "applied", "position", "low_water",
                 "bytes_done", "bytes_total", "row_events", "row_events_per_s", "trx_per_s", "eta_s", "elapsed_s",
                 "source_time", "workers", "workers_busy", "retries", "ddl"}


def _records(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_json_progress_and_summary(clean_servers) -> None:
    source, target, start, files = shop_after_backup(clean_servers, 3000, ddl_at=1500)
    result = replay_into(source, target, start, "--workers", "3", "--group-max-trx", "5",
                         env={"BINREPLAY_CHECKPOINT_INTERVAL": "0.2"})
    assert result.returncode == 0, result.stderr
    assert_same_content(source, target)
    records = _records(result.stderr)
    assert records[0]["type"] == "start" and records[0]["total_transactions"] == 3001
    progress = [r for r in records if r["type"] == "progress"]
    assert progress, result.stderr
    for r in progress:
        assert set(r) >= PROGRESS_KEYS, PROGRESS_KEYS - set(r)
        assert 0 <= r["bytes_done"] <= r["bytes_total"] == records[0]["total_bytes"]
        assert r["workers"] == 3 and 0 <= r["workers_busy"] <= 3
    # The applied low-water mark and the bytes under it only move forward.
    done = [r["bytes_done"] for r in progress]
    assert done == sorted(done)
    summary = records[-1]
    assert summary["type"] == "summary" and summary["outcome"] == "complete"
    assert summary["applied"] == 3001 and summary["ddl"] == 1 and summary["retries"] == 0
    assert summary["bytes_done"] == summary["bytes_total"] > 0
    assert summary["low_water"] == summary["last_applied"]
    assert summary["parallelism"] > 0.5 and len(summary["worker_states"]) == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d", summary["source_time"])  # with its offset


def test_bar_on_a_terminal_with_worker_lines(clean_servers) -> None:
    """`--progress auto` on a terminal: a tqdm bar over binlog bytes with rates, position, source time
    and one status line per worker with -v."""
    source, target, start, files = shop_after_backup(clean_servers, 3000)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))  # a real terminal has a size
    proc = subprocess.Popen([sys.executable, "-m", "binreplay", "replay", *files, *target.connection_flags(),
                             "--start-position", str(start[1]), "--workers", "2", "-v"],
                            stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "200"})
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
    assert proc.wait(timeout=30) == 0, out.decode(errors="replace")[-3000:]
    text = out.decode(errors="replace")
    assert re.search(r"replay: +\d+%\|", text), text[-2000:]            # the bar, with a percentage
    assert re.search(r"\d[\d.]*[kMG]?/\d[\d.]*[kMG]? \[", text), text[-2000:]  # over bytes
    assert re.search(r"[\d.]+[kMG]?B/s", text), text[-2000:]
    assert "trx/s" in text and "row ev/s" in text and "src 20" in text
    assert "worker-0:" in text and "worker-1:" in text and "commits" in text
    assert "binreplay: complete: 3000 transactions applied" in text
    assert_same_content(source, target)


def test_progress_file_for_a_runbook(clean_servers, tmp_path) -> None:
    """--progress-file: JSON lines for a script to tail, next to whatever the terminal shows."""
    source, target, start, files = shop_after_backup(clean_servers, 500)
    log = tmp_path / "progress.jsonl"
    result = replay_into(source, target, start, "--progress", "plain", "--progress-file", str(log))
    assert result.returncode == 0, result.stderr
    assert not any(line.startswith("{") for line in result.stderr.splitlines())
    assert "binreplay: complete: 500 transactions applied" in result.stderr
    records = _records(log.read_text())
    assert [r["type"] for r in records][0] == "start" and records[-1]["type"] == "summary"
    assert records[-1]["applied"] == 500
    assert_same_content(source, target)


def test_failed_run_still_writes_its_outcome(clean_servers, tmp_path) -> None:
    """A script tailing the JSON needs the outcome most when the run fails; a bad --progress-file
    path is a one-line usage error."""
    source, target, start, files = shop_after_backup(clean_servers, 300)
    target.execute("DROP TABLE shop.order_items")  # the binlog writes to it: exit 9
    log = tmp_path / "progress.jsonl"
    result = replay_into(source, target, start, "--progress-file", str(log))
    assert result.returncode == 9, result.stderr
    for records in (_records(result.stderr), _records(log.read_text())):
        assert records[-1]["type"] == "summary" and records[-1]["outcome"] == "failed"
    bad = replay_into(source, target, start, "--progress", "none", "--progress-file", str(tmp_path / "no" / "x"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--progress-file" in bad.stderr
