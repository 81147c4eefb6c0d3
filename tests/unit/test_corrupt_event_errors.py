"""Server errors that mean "this event is corrupt" are bad input (errors.classify, Fault.CORRUPT), and a
batch is split into batches of one member each to find the transaction that carried it."""

from __future__ import annotations

import pymysql

from binreplay.apply.batch_parts import one_at_a_time
from binreplay.errors import Fault, classify
from binreplay.model import Transaction
from binreplay.schedule.batches import Batch


def _err(code: int, text: str) -> pymysql.err.OperationalError:
    return pymysql.err.OperationalError(code, text)


def test_corrupt_event_errors_are_classified_as_corrupt() -> None:
    got_171 = _err(1030, 'Got error 171 "The event was corrupt, leading to illegal data being read" from storage '
                         'engine InnoDB')
    assert classify(got_171) is Fault.CORRUPT
    assert classify(_err(1030, "Got error 28 \"No space left on device\" from storage engine")) is Fault.REFUSED
    assert classify(_err(1610, "Corrupted replication event was detected")) is Fault.CORRUPT
    assert classify(_err(1594, "Relay log read failure: Could not parse relay log event entry")) is Fault.CORRUPT
    # Only from a BINLOG statement: elsewhere the target's own failure.
    for code in (1105, 1149):
        assert classify(_err(code, "x"), binlog_statement=True) is Fault.CORRUPT
        assert classify(_err(code, "x")) is Fault.REFUSED
    # A string that is no text of its character set: from our row statements only, not a source's statement.
    assert classify(_err(1300, "Invalid utf8mb4 character string: '8436'"), row_images=True) is Fault.CORRUPT
    assert classify(_err(1300, "Invalid utf8mb4 character string: '8436'")) is Fault.REFUSED
    # A table of another definition is the target's (schema) problem, and data conflicts stay target errors.
    for code in (1677, 1062, 1032):
        assert classify(_err(code, "x"), binlog_statement=True, row_images=True) is Fault.REFUSED
    assert classify(_err(1213, "Deadlock"), binlog_statement=True) is Fault.RETRY
    assert classify(_err(2013, "Lost connection"), binlog_statement=True) is Fault.LOST


def _trx(start: int, end: int) -> Transaction:
    trx = Transaction.__new__(Transaction)
    trx.start_pos, trx.end_pos = start, end
    return trx


def test_one_at_a_time_covers_the_batch_range_in_order() -> None:
    members = [_trx(200, 300), _trx(300, 400), _trx(450, 500)]   # 400-450 rides along (not applied)
    batch = Batch(seq=4, file_index=1, file="b.000002", start_pos=120, end_pos=520, members=members, covered=4)
    subs = one_at_a_time(batch)
    assert [(s.start_pos, s.record_end, len(s.members)) for s in subs] == [(120, 300, 1), (300, 400, 1),
                                                                          (400, 500, 1)]
    assert all(s.seq == 4 and s.file_index == 1 and s.file == "b.000002" for s in subs)
    assert [s.members[0] for s in subs] == members
