"""The replica position after a replay, read from the binlog alone: the GTID state at a point is
the file's opening state plus the GTIDs logged before it (real MySQL fixtures)."""

from __future__ import annotations

from pathlib import Path

from binreplay.model import BinlogPosition
from binreplay.run.replica_position import FileGtids, replica_position
from binreplay.source.gtid import MysqlGtidSet
from binreplay.source.reader import BinlogReader

DATA = Path(__file__).parent.parent / "data" / "binlogs" / "mysql"


def _transactions(path: Path) -> list:
    return list(BinlogReader([path]).transactions())


def test_the_state_at_a_files_end_is_what_the_next_file_opens_with() -> None:
    first, second = DATA / "percona-8.0.45-gtid.000001", DATA / "percona-8.0.45-gtid.000002"
    last = _transactions(first)[-1]
    at_end = replica_position(first, BinlogPosition(0, first.name, last.end_pos))
    opening = _transactions(second)[0]
    next_file = replica_position(second, BinlogPosition(1, second.name, opening.start_pos))
    assert at_end.flavor == "mysql" and at_end.gtid_state
    assert at_end.gtid_state == next_file.gtid_state          # the server's own PREVIOUS_GTIDS says so
    assert at_end.statements[0] == f"SET GLOBAL gtid_purged = '{at_end.gtid_state}'"
    assert "SOURCE_AUTO_POSITION=1" in at_end.statements[1]


def test_gtids_before_the_point_count_and_those_after_it_do_not() -> None:
    path = DATA / "percona-8.0.45-gtid.000002"
    trxs = [t for t in _transactions(path) if t.gtid is not None and not t.gtid.anonymous]
    assert len(trxs) >= 2
    middle = trxs[len(trxs) // 2]
    before = replica_position(path, BinlogPosition(0, path.name, middle.start_pos)).gtid_state
    after = replica_position(path, BinlogPosition(0, path.name, middle.end_pos)).gtid_state
    assert before is not None and after is not None
    assert middle.gtid not in MysqlGtidSet(before) and middle.gtid in MysqlGtidSet(after)
    assert all(t.gtid in MysqlGtidSet(before) for t in trxs if t.end_pos <= middle.start_pos)


def test_without_a_gtid_state_the_position_is_given() -> None:
    for name in ("percona-8.0.45-anon.000001",      # anonymous GTIDs: an empty state
                 "mc-9.6.0-gtid-tagged.000001"):    # the tagged PREVIOUS_GTIDS format, not decoded
        path = DATA / name
        last = _transactions(path)[-1]
        position = replica_position(path, BinlogPosition(0, path.name, last.end_pos))
        assert not position.gtid_state
        assert position.statements == ["CHANGE REPLICATION SOURCE TO SOURCE_HOST='<source>', SOURCE_USER='<user>', "
                                       f"SOURCE_PASSWORD='<password>', SOURCE_LOG_FILE='{name}', "
                                       f"SOURCE_LOG_POS={last.end_pos}"]


def test_what_the_run_read_gives_the_same_state_as_walking_the_file() -> None:
    """The run hands over the GTIDs of the transactions it read (from where it began reading the file):
    with the part before that walked, the state is the one a walk of the whole file gives."""
    for path in (DATA.parent / "mariadb" / "mdbpoc-11.8.5-sbr-gtid.000007", DATA / "percona-8.0.45-gtid.000002"):
        trxs = _transactions(path)
        assert len(trxs) >= 2 and any(t.gtid is not None for t in trxs)
        for begin in (0, len(trxs) // 2):                  # reading from the file's start, or from the middle
            read_from = trxs[begin].start_pos if begin else 4
            seen = FileGtids(0, read_from)
            for trx in trxs[begin:]:
                seen.add(trx)
            mark = BinlogPosition(0, path.name, trxs[-1].end_pos)
            walked = replica_position(path, mark)
            assert walked.gtid_state
            assert replica_position(path, mark, seen) == walked, (path.name, begin)
