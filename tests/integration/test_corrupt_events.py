"""Row events damaged with a valid CRC, replayed into a real target (issue 12, "Hostile input").

The reader cannot see every damage inside a row image; the target's server can ("Got error 171 The
event was corrupt"). Such an error is bad input (exit 3, errors.classify: Fault.CORRUPT) naming
the source transaction that carried the event, also inside a group of many transactions, and
nothing of that transaction stays applied. `--apply sql` decodes the rows itself: its decoding
failures are bad input too. Last, a small round of random damage (tests/support/binlog_mutations.py)
against the target: every transaction is all or nothing, and exit 0 means all of them.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import binlog_mutations as M
import pytest

from binreplay.binlog import constants as C
from binreplay.errors import ExitCode

from helpers import assert_same_content, binlogs_from, run_binreplay
from replays import BASE, one_line_error, run_on, setup_backup

N = 20
BAD = 7          # the transaction inserting 'b7' carries the damaged rows event


def _workload(clean_servers):
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('b{i}', 'x', {i})" for i in range(N)])
    files = binlogs_from(source, start[0])   # the workload is in the first (the second is empty)
    return source, target, start, Path(files[0])


def _gtid_events(source, name: str) -> list[tuple[int, str]]:
    """(position, GTID) of each transaction of a source binlog."""
    out = []
    for row in source.execute(f"SHOW BINLOG EVENTS IN '{name}'"):
        if row[2] == "Gtid" and "GTID " in row[5]:
            out.append((int(row[1]), row[5].split("GTID ")[1].split()[0]))
    return out


def _damaged(path: Path, tmp_path: Path) -> Path:
    """The binlog with the email value 'b7' given a length prefix past its event's end (CRC recomputed)."""
    b = M.split(path.read_bytes())
    ev = next(e for e in b.events if e.type in C.ROWS_EVENTS and b"b%d" % BAD in e.raw)
    at = ev.raw.index(b"b%d" % BAD)
    assert ev.raw[at - 1] == 2 or ev.raw[at - 2:at] == b"\x02\x00", ev.raw
    ev.raw[at - 1 if ev.raw[at - 1] == 2 else at - 2] = 0xF0
    out = tmp_path / path.name
    out.write_bytes(M.join(b))
    return out


def _emails(target) -> set[str]:
    return {r[0] for r in target.execute("SELECT email FROM app.users WHERE email NOT LIKE '%@%'")}


@pytest.mark.parametrize("workers", [1, 2])
def test_corrupt_rows_event_in_a_group_names_its_transaction(clean_servers, tmp_path: Path, workers: int) -> None:
    source, target, start, path = _workload(clean_servers)
    bad_pos, bad_gtid = [g for g in _gtid_events(source, path.name) if g[0] >= start[1]][BAD]
    damaged = _damaged(path, tmp_path)
    args = ("--start-position", str(start[1]), "--workers", str(workers), "--group-max-trx", "50",
            *target.connection_flags(), "--progress", "none")
    r = run_binreplay("replay", str(damaged), *args)
    one_line_error(r, ExitCode.BAD_INPUT, f"{path.name}:{bad_pos} ({bad_gtid})", "corrupt")
    # Everything before it applied and recorded, nothing of it, nothing after it (1 worker) ...
    applied = _emails(target)
    assert f"b{BAD}" not in applied
    assert {f"b{i}" for i in range(BAD)} <= applied
    if workers == 1:
        assert applied == {f"b{i}" for i in range(BAD)}
    # ... so a rerun stops there again, and once the file is repaired resumes there.
    r = run_binreplay("replay", str(damaged), *args)
    assert r.returncode == ExitCode.BAD_INPUT, r.stderr
    assert f"{len(applied)} transactions already applied" in r.stderr and f"{path.name}:{bad_pos}" in r.stderr, r.stderr
    assert _emails(target) == applied
    damaged.write_bytes(path.read_bytes())
    r = run_binreplay("replay", str(damaged), *args)
    assert r.returncode == 0, r.stderr
    assert_same_content(source, target)


def test_apply_sql_undecodable_row_is_bad_input(clean_servers, tmp_path: Path) -> None:
    source, target, start, path = _workload(clean_servers)
    damaged = _damaged(path, tmp_path)
    rows_pos = next(s for s, e in _starts(M.split(damaged.read_bytes()))
                    if e.type in C.ROWS_EVENTS and b"b%d" % BAD in e.raw)
    args = ("--start-position", str(start[1]), "--apply", "sql", "--workers", "1",
            *target.connection_flags(), "--progress", "none")
    r = run_binreplay("replay", str(damaged), *args)
    one_line_error(r, ExitCode.BAD_INPUT, path.name, f"position {rows_pos}", "cannot be decoded")
    assert _emails(target) == {f"b{i}" for i in range(BAD)}   # the group's members before it applied
    damaged.write_bytes(path.read_bytes())
    r = run_binreplay("replay", str(damaged), *args)
    assert r.returncode == 0, r.stderr
    assert_same_content(source, target)


def _starts(b: M.Binlog):
    pos = 4
    for e in b.events:
        yield pos, e
        pos += len(e.raw)


# --- a small round of random damage against the target -----------------------------------------

TRXS = 12


def rows_body(r: random.Random, b: M.Binlog, data: bytes, repair: bool) -> bytes:
    """1-3 bytes of a rows event's body (after its table id) replaced, CRC recomputed: mostly only
    the target's server can tell (a length past the row image, a NULL bit, a column bitmap)."""
    ev = r.choice([e for e in b.events if e.type in C.ROWS_EVENTS])
    at = r.randrange(C.HEADER_LEN + 6, len(ev.raw) - 4)
    for i in range(at, min(len(ev.raw) - 4, at + r.randint(1, 3))):
        ev.raw[i] = r.randrange(256)
    return M.join(b)


KINDS = {**M.MUTATIONS, "rows event body bytes, CRC recomputed": (rows_body, True)}
ROUND = [("rows event body bytes, CRC recomputed", 10),
         ("bit flip, CRC recomputed", 4), ("body bytes overwritten, CRC recomputed", 4),
         ("event type changed, CRC recomputed", 3), ("events swapped", 3), ("event deleted", 3),
         ("event duplicated", 2), ("truncated", 2)]
# --apply sql decodes the rows itself (apply/sql_rows.py): the damage only it or the server can see.
ROUND_SQL = [("rows event body bytes, CRC recomputed", 10), ("bit flip, CRC recomputed", 3)]


@pytest.mark.parametrize("apply", ["binlog", "sql"])
def test_random_damage_round_is_all_or_nothing(clean_servers, tmp_path: Path, apply: str) -> None:
    """Each of TRXS source transactions writes 3 ledger rows (a keyless table, one statement each)
    and a marker row (keyless too); each damaged copy of that binlog is replayed into the restored target."""
    source, target = clean_servers
    started = time.monotonic()
    setup_backup(source, target, "CREATE DATABASE app",
                 "CREATE TABLE app.ledger (t INT, tag CHAR(6), j INT, t2 INT)",
                 "CREATE TABLE app.marks (t INT, tag CHAR(6))")   # keyless: a damaged value cannot conflict
    source.execute("FLUSH BINARY LOGS")   # the workload alone in a file, replayed from its start
    first = source.binlog_files()[-1].name
    statements = []
    for t in range(TRXS):
        statements += ["BEGIN"] + [f"INSERT INTO app.ledger VALUES ({t}, 't{t:04d}', {j}, {t})" for j in range(3)]
        statements += [f"INSERT INTO app.marks VALUES ({t}, 't{t:04d}')", "COMMIT"]
    run_on(source, statements)
    (path,) = [Path(f) for f in binlogs_from(source, first) if Path(f).name == first]
    data = path.read_bytes()
    outcomes: dict[int, int] = {}
    rounds = ROUND if apply == "binlog" else ROUND_SQL
    for kind, count in rounds:
        fn, repair = KINDS[kind]
        for seed in range(count):
            target.execute("DELETE FROM app.ledger")
            target.execute("DELETE FROM app.marks")
            target.execute("DROP DATABASE IF EXISTS binreplay")
            copy = tmp_path / path.name
            damaged = fn(random.Random(seed), M.split(data), data, repair)
            copy.write_bytes(damaged)
            r = run_binreplay("replay", str(copy), *target.connection_flags(), "--workers", "2",
                              "--apply", apply, "--progress", "none", timeout=60)
            what = f"{kind} #{seed}: exit {r.returncode}: {r.stderr[-1500:]}"
            outcomes[r.returncode] = outcomes.get(r.returncode, 0) + 1
            assert r.returncode in (ExitCode.OK, ExitCode.BAD_INPUT, ExitCode.UNSUPPORTED), what
            assert "Traceback" not in r.stderr, what
            if r.returncode != ExitCode.OK:
                assert len(r.stderr.strip().splitlines()) == 1, what
            held = TRXS
            if "truncated" in r.stderr:   # a cut last file: only the transactions it holds whole
                held = sum(1 for e in M.split(damaged).events if e.type == C.XID_EVENT)
            _check_all_or_nothing(target, complete=held if r.returncode == ExitCode.OK else 0, what=what)
    assert sum(outcomes.values()) == sum(c for _, c in rounds)
    assert time.monotonic() - started < 90, outcomes


def _check_all_or_nothing(target, *, complete: int, what: str) -> None:
    """Each transaction's ledger rows and marker are there together or not at all. A row is counted
    for the transaction its values agree on (damage changes a value at one place: `t`, the tag or
    `t2`); the first `complete` transactions (exit 0: all the file holds) are there."""
    per: dict[int, int] = {}
    for t, tag, _j, t2 in _rows(target, "SELECT t, CAST(tag AS BINARY), j, t2 FROM app.ledger"):
        votes = [t, t2] + ([int(tag[1:])] if tag and tag[1:].isdigit() else [])
        owner = max(set(votes), key=votes.count)
        per[owner] = per.get(owner, 0) + 1
    marks = {}
    for t, tag in _rows(target, "SELECT t, CAST(tag AS BINARY) FROM app.marks"):
        marks[t if tag == f"t{t:04d}" or not (tag and tag[1:].isdigit()) else int(tag[1:])] = True
    for t in range(TRXS):
        rows, marked = per.get(t, 0), t in marks
        assert (rows, marked) in ((0, False), (3, True)), f"transaction {t}: {rows} rows, marker {marked}; {what}"
        if t < complete:
            assert (rows, marked) == (3, True), f"exit 0 but transaction {t} is missing; {what}"


def _rows(target, sql: str) -> list[tuple]:
    """Rows with the tag as text (damage may have left bytes that are no character)."""
    return [tuple(v.decode("latin-1") if isinstance(v, bytes) else v for v in row) for row in target.execute(sql)]
