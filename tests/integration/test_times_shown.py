"""Times carry their zone everywhere, a time copied from one command into --stop-datetime means the
same instant, and a --stop-datetime no event reaches is exit 12 unless allowed (issue 14, item 3).

Each binreplay process runs in its own TZ (Asia/Kolkata is +05:30, America/New_York -05:00 in
December... or -04:00 in summer: the expected strings are computed with the same zone rules), and
the source's event times are set with SET TIMESTAMP, a day ahead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from binreplay.devtools.sandbox import Sandbox
from binreplay.errors import ExitCode

from helpers import binlogs_from, run_binreplay, snapshot_to_target
from replays import ok, one_line_error, summary_of

KOLKATA, NEW_YORK = "Asia/Kolkata", "America/New_York"


def _shown(ts: int, zone: str) -> str:
    """What binreplay should show for `ts` on a machine in `zone`."""
    text = dt.datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S%z")
    return f"{text[:-2]}:{text[-2:]}"


def _naive(ts: int, zone: str) -> str:
    """`ts` as a DBA on a machine in `zone` types it: local time, no offset."""
    return dt.datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def _three_inserts(source: Sandbox, target: Sandbox) -> tuple[tuple[str, int], int]:
    """A backup of `d` in the target, then inserts 1, 2, 3 stamped base+10, +20, +30."""
    source.execute("CREATE DATABASE d")
    source.execute("CREATE TABLE d.t (id INT PRIMARY KEY) ENGINE=InnoDB")
    start = snapshot_to_target(source, target, ["d"])
    base = int(time.time()) + 86400
    with source.connect("d") as conn, conn.cursor() as cur:
        for i in (1, 2, 3):
            cur.execute(f"SET TIMESTAMP={base + 10 * i}")
            cur.execute(f"INSERT INTO t VALUES ({i})")
    return start, base


def _replay(source: Sandbox, target: Sandbox, start: tuple[str, int], zone: str, *extra: str):
    files = binlogs_from(source, start[0])
    return run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                         *extra, env={"TZ": zone})


def _ids(target: Sandbox) -> list[int]:
    return [r[0] for r in target.execute("SELECT id FROM d.t ORDER BY id")]


def test_unreached_stop_datetime_is_exit_12_unless_allowed(clean_servers) -> None:
    source, target = clean_servers
    start, base = _three_inserts(source, target)
    beyond = _naive(base + 3600, KOLKATA)
    r = _replay(source, target, start, KOLKATA, "--progress", "json", "--stop-datetime", beyond)
    one_line_error(r, ExitCode.STOP_NOT_REACHED, "did not reach --stop-datetime",
                   _shown(base + 3600, KOLKATA), "--allow-unreached-stop")
    assert _ids(target) == []          # refused by the validation read: the target was not touched
    r = _replay(source, target, start, KOLKATA, "--progress", "json", "--stop-datetime", beyond,
                "--allow-unreached-stop")
    ok(r)
    summary = summary_of(r)
    assert any("did not reach --stop-datetime" in w for w in summary["warnings"]), summary
    assert summary["stop_reason"] is None and _ids(target) == [1, 2, 3]
    # A stop the binlogs do reach needs no flag, and says which event decided it.
    r = _replay(source, target, start, KOLKATA, "--progress", "plain", "--dry-run",
                "--stop-datetime", _naive(base + 30, KOLKATA))
    ok(r)
    assert "did not reach" not in r.stderr and f"({_shown(base + 30, KOLKATA)}) is the first event" in r.stderr


def test_times_shown_carry_their_zone_and_read_back_as_the_same_instant(clean_servers, tmp_path: Path) -> None:
    source, target = clean_servers
    start, base = _three_inserts(source, target)
    files = binlogs_from(source, start[0])
    # plan: text and JSON in the machine's zone, with the offset
    plan = run_binreplay("plan", *files, "--start-position", str(start[1]), env={"TZ": KOLKATA})
    ok(plan)
    assert f"time span:     {_shown(base + 10, KOLKATA)} .. {_shown(base + 30, KOLKATA)}" in plan.stdout
    plan = run_binreplay("plan", *files, "--start-position", str(start[1]), "--format", "json",
                         env={"TZ": NEW_YORK})
    ok(plan)
    assert json.loads(plan.stdout)["last_time"] == _shown(base + 30, NEW_YORK)
    # replay up to the second insert, typed as local time in Kolkata: JSON summary and stop reason
    r = _replay(source, target, start, KOLKATA, "--progress", "json", "--stop-datetime", _naive(base + 20, KOLKATA))
    ok(r)
    summary = summary_of(r)
    assert summary["source_time"] == _shown(base + 10, KOLKATA)
    assert _shown(base + 20, KOLKATA) in summary["stop_reason"] and _ids(target) == [1]
    # status in New York names the next transaction's time with its offset ...
    status = run_binreplay("status", *files, *target.connection_flags(), env={"TZ": NEW_YORK})
    ok(status)
    next_line = next(line for line in status.stdout.splitlines() if "next to apply" in line)
    assert next_line.endswith(f"source time {_shown(base + 20, NEW_YORK)}"), status.stdout
    # ... which, copied into --stop-datetime in Kolkata, is the same instant: the replay stops before it
    # again (without the offset it would be 10.5 hours off and apply or skip everything).
    copied = next_line.rsplit("source time ", 1)[1]
    r = _replay(source, target, start, KOLKATA, "--progress", "json", "--stop-datetime", copied)
    ok(r)
    assert summary_of(r)["applied"] == 0 and _ids(target) == [1]
    # the bar shows the source time with its offset too
    r = _replay(source, target, start, KOLKATA, "--progress", "bar", "--stop-datetime",
                _shown(base + 30, NEW_YORK))
    ok(r)
    assert f"src {_shown(base + 20, KOLKATA)}" in r.stderr and _ids(target) == [1, 2]


def test_live_stop_datetime_unreached_is_exit_12_and_follow_waits_for_it(clean_servers, tmp_path: Path) -> None:
    """With --source-host the fetch says whether the stop was reached: having read all the source has
    without it is exit 12 (before anything is applied) or, allowed, a warning; --follow waits for it."""
    source, target = clean_servers
    start, base = _three_inserts(source, target)
    live = ["replay", "--source-socket", str(source.socket), "--source-user", "root", "--source-binlog", start[0],
            "--start-position", str(start[1]), "--spool-dir", str(tmp_path / "spool"), *target.connection_flags(),
            "--progress", "json", "--stop-datetime", _naive(base + 50, KOLKATA)]
    r = run_binreplay(*live, env={"TZ": KOLKATA})
    one_line_error(r, ExitCode.STOP_NOT_REACHED, "did not reach --stop-datetime", _shown(base + 50, KOLKATA))
    assert _ids(target) == []
    r = run_binreplay(*live, "--allow-unreached-stop", env={"TZ": KOLKATA})
    ok(r)
    assert any("did not reach --stop-datetime" in w for w in summary_of(r)["warnings"]) and _ids(target) == [1, 2, 3]
    proc = subprocess.Popen([sys.executable, "-m", "binreplay", *live, "--follow"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TZ": KOLKATA})
    try:
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()[1]   # caught up, waiting for the stop: no exit 12
        with source.connect("d") as conn, conn.cursor() as cur:
            for i, at in ((4, 40), (5, 60), (6, 45)):
                cur.execute(f"SET TIMESTAMP={base + at}")
                cur.execute(f"INSERT INTO t VALUES ({i})")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
    assert _ids(target) == [1, 2, 3, 4]
