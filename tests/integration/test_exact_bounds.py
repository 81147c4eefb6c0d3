"""--start-datetime / --stop-datetime decided by events exactly as `mariadb-binlog | mariadb` decides
them, and the --database filter following renames (issue 13).

Event times are set with SET TIMESTAMP in the source sessions (a day ahead, so the events the
server stamps with the real clock, like each file's header, are before every bound): a quick INSERT
stamped +30 commits before a long UPDATE stamped +20; a multi-statement transaction's GTID event
carries its COMMIT's time (+50) and its statements their own (+40, +60); FLUSH BINARY LOGS at +70
writes a ROTATE and the next file's header at +70, and the UPDATE after it is stamped +65.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pipe_reference import exact_as_pipe, snapshot, take_backup

from binreplay.devtools.sandbox import Sandbox

from helpers import binlogs_from, replay_into, run_binreplay
from replays import ok, setup_backup, summary_of


def _local(ts: int) -> str:
    """A time as a DBA types it for both tools: local time, no zone."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _out_of_order_history(source: Sandbox, tmp_path: Path):
    """A backup of `d`, then the history above; returns (backup, base time). Rows a skipped
    transaction wrote are never changed later (a row event of a missing row fails in both replays)."""
    source.execute("CREATE DATABASE d")
    source.execute("CREATE TABLE d.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    source.execute("INSERT INTO d.t VALUES (100, 1)")
    backup = take_backup(source, ["d"], tmp_path / "backup.sql")
    base = int(time.time()) + 86400
    with source.connect("d") as conn, conn.cursor() as cur:
        for sql in (f"SET TIMESTAMP={base + 10}", "INSERT INTO t VALUES (1, 1)",
                    f"SET TIMESTAMP={base + 30}", "INSERT INTO t VALUES (2, 2)",            # the quick INSERT
                    f"SET TIMESTAMP={base + 20}", "UPDATE t SET v = v + 1 WHERE id IN (2, 100)",   # the long UPDATE
                    "BEGIN", f"SET TIMESTAMP={base + 40}", "INSERT INTO t VALUES (3, 3)",
                    f"SET TIMESTAMP={base + 60}", "INSERT INTO t VALUES (4, 4)",
                    f"SET TIMESTAMP={base + 50}", "COMMIT",
                    f"SET TIMESTAMP={base + 70}", "FLUSH BINARY LOGS",
                    f"SET TIMESTAMP={base + 65}", "UPDATE t SET v = v * 10 WHERE id = 100",   # before the ROTATE
                    f"SET TIMESTAMP={base + 80}", "INSERT INTO t VALUES (5, 5)"):
            cur.execute(sql)
    return backup, base


# (start, stop) offsets from the base time; what mysqlbinlog decides, and what a per-transaction rule got wrong:
BOUNDS = {
    # the first event at/after +25 is the quick INSERT; the UPDATE after it (+20) is replayed too
    "start_before_an_earlier_stamped_update": (25, None),
    # the first event at/after +67 is the ROTATE (+70): the UPDATE stamped +65 in the next file is replayed
    "start_at_a_rotation": (67, None),
    # the ROTATE (+70) stops the replay: the UPDATE stamped +65 after it is not applied
    "stop_at_a_rotation": (None, 67),
    # +55 falls inside the transaction whose GTID event says +50: its +60 statement stops it, unapplied
    "stop_inside_a_transaction": (None, 55),
    "both": (25, 67),
}


@pytest.mark.parametrize("case", list(BOUNDS))
def test_datetime_bounds_decided_by_events_like_the_pipe(clean_servers, tmp_path, case) -> None:
    source, target = clean_servers
    backup, base = _out_of_order_history(source, tmp_path)
    start, stop = BOUNDS[case]
    flags: list[str] = []
    if start is not None:
        flags += [f"--start-datetime={_local(base + start)}"]
    if stop is not None:
        flags += [f"--stop-datetime={_local(base + stop)}"]
    outcomes = exact_as_pipe(source, target, backup, "--progress", "json", *flags, binlog_args=tuple(flags))
    summary = summary_of(outcomes[-1].runs[-1])
    if start is not None:
        assert "is the first event at or after it" in summary["start_reason"], summary
    if stop is not None:
        assert "is the first event at or after it" in summary["stop_reason"], summary
    if case == "stop_at_a_rotation":
        assert "ROTATE event" in summary["stop_reason"]
    if case == "stop_inside_a_transaction":
        assert "which was not applied" in summary["stop_reason"]


def test_start_inside_a_transaction_applies_it_whole(clean_servers, tmp_path) -> None:
    """The pipe would apply the tail of the transaction (+60's row without +40's): binreplay applies it
    whole, a state the source really had."""
    source, target = clean_servers
    backup, base = _out_of_order_history(source, tmp_path)
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    r = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(backup.pos),
                      "--progress", "json", f"--start-datetime={_local(base + 55)}")
    ok(r)
    assert "applied whole" in summary_of(r)["start_reason"]
    assert sorted(target.execute("SELECT id, v FROM d.t")) == [(3, 3), (4, 4), (5, 5), (100, 20)]


# ---- --database follows renames ------------------------------------------------------------

def _rename_history(source: Sandbox, tmp_path: Path, default_db: str):
    """`other.x` (with rows) renamed into `d` in a session whose default database is `default_db`,
    then written as `d.x`; and `d.gone` renamed out of `d` by ALTER TABLE ... RENAME."""
    for sql in ("CREATE DATABASE d", "CREATE DATABASE other",
                "CREATE TABLE other.x (id INT PRIMARY KEY, v INT) ENGINE=InnoDB", "INSERT INTO other.x VALUES (1, 1)",
                "CREATE TABLE d.gone (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO d.gone VALUES (7)"):
        source.execute(sql)
    backup = take_backup(source, ["d", "other"], tmp_path / "backup.sql")
    with source.connect(default_db) as conn, conn.cursor() as cur:
        # (No write to other.x before the rename: the filter leaves it out, as the pipe's does.)
        for sql in ("RENAME TABLE other.x TO d.x",
                    "INSERT INTO d.x VALUES (3, 3)", "UPDATE d.x SET v = v + 10",
                    "ALTER TABLE d.gone RENAME TO other.gone", "INSERT INTO other.gone VALUES (8)"):
            cur.execute(sql)
    return backup


def test_database_filter_follows_renames_like_the_pipe(clean_servers, tmp_path) -> None:
    """With `USE d`, mariadb-binlog --database=d keeps the renames: binreplay, judging them by the
    tables they name, keeps them too (a per-table filter used to drop the rename into d, exit 9)."""
    source, target = clean_servers
    backup = _rename_history(source, tmp_path, "d")
    exact_as_pipe(source, target, backup, "--database", "d", binlog_args=("--database=d",))


def test_database_filter_follows_a_rename_from_another_default_database(clean_servers, tmp_path) -> None:
    """With `USE other` the pipe drops the rename into d and its inserts into d.x fail; binreplay
    applies it: d ends as on the source, and other only changes by the renames themselves."""
    source, target = clean_servers
    backup = _rename_history(source, tmp_path, "other")
    files = binlogs_from(source, backup.file)
    backup.restore(target)
    r = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(backup.pos),
                      "--progress", "none", "--database", "d", "--workers", "4")
    ok(r)
    got, want = snapshot(target), snapshot(source)
    assert {k: v for k, v in got.items() if " d." in k} == {k: v for k, v in want.items() if " d." in k}
    assert "rows other.gone" in got and (8,) not in got["rows other.gone"]   # other's own rows are not replayed


def test_extended_multi_domain_stop_gtid_ends_where_a_fresh_read_ends(clean_servers) -> None:
    """A resumed read starts after domain 0 reached its stop GTID. A later domain-0 transaction numbered
    below that stop (the source's gtid_strict_mode is off) is beyond the stop point of the selection,
    which ends once every domain reached its stop: the resumed run must not apply it either."""
    source, target = clean_servers
    start = setup_backup(source, target, "CREATE DATABASE app", "CREATE TABLE app.t (n INT, d INT)")
    seq = source.execute("SELECT @@gtid_binlog_pos")[0][0]
    base = int(str(seq).split("-")[-1]) if seq else 0

    def insert(cur, n: int, domain: int) -> None:
        cur.execute(f"SET SESSION gtid_domain_id = {domain}")
        cur.execute(f"INSERT INTO app.t VALUES ({n}, {domain})")

    with source.connect("app") as conn, conn.cursor() as cur:
        for n in range(1, 6):
            insert(cur, n, 0)                 # 0-1-(base+1 .. base+5): domain 0 stops at the 5th
        for n in range(6, 9):
            insert(cur, n, 2)                 # 2-1-1 .. 2-1-3
        for n in range(9, 12):
            insert(cur, n, 0)                 # after domain 0's stop: left to a later run
        for n in range(12, 15):
            insert(cur, n, 2)                 # 2-1-4 .. 2-1-6: domain 2 stops at the 6th
        cur.execute("SET SESSION gtid_domain_id = 0")
        cur.execute(f"SET SESSION gtid_seq_no = {base + 2}")   # a lower number, allowed without strict mode
        cur.execute("INSERT INTO app.t VALUES (99, 0)")
    stop0, stop2 = f"0-1-{base + 5}", "2-1-6"
    first = replay_into(source, target, start, "--stop-gtid", stop0, "--workers", "1")
    assert first.returncode == 0, first.stderr
    assert target.execute("SELECT COUNT(*) FROM app.t")[0][0] == 5
    extended = replay_into(source, target, start, "--stop-gtid", f"{stop0},{stop2}", "--workers", "1")
    assert extended.returncode == 0, extended.stderr
    assert "resuming run" in extended.stderr, extended.stderr[-2000:]
    # Everything up to 2-1-6, domain 0 only up to its stop, and not the later transaction numbered 0-1-(base+2).
    assert sorted(r[0] for r in target.execute("SELECT n FROM app.t")) == [*range(1, 9), *range(12, 15)]
    assert summary_of(extended)["stop_reason"] == "reached --stop-gtid in every domain it names"
