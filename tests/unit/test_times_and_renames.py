"""binreplay.times (the one way times are read and shown) and the rename parsing the filters follow."""

from __future__ import annotations

import os
import time

import pytest

from binreplay.errors import UsageError
from binreplay.source.filters import Filters, renamed_tables
from binreplay.times import parse_datetime, shown_time


@pytest.fixture
def kolkata():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_a_shown_time_carries_its_offset_and_reads_back_as_the_same_instant(kolkata) -> None:
    assert shown_time(0) == "1970-01-01 05:30:00+05:30"
    assert parse_datetime("1970-01-01 05:30:00+05:30", "--stop-datetime") == 0
    assert parse_datetime("1970-01-01 00:00:00+00:00", "--stop-datetime") == 0
    assert parse_datetime("1970-01-01 05:30:00", "--stop-datetime") == 0   # no offset: local time
    with pytest.raises(UsageError, match="--stop-datetime"):
        parse_datetime("yesterday", "--stop-datetime")


@pytest.mark.parametrize(("sql", "names"), [
    (b"RENAME TABLE other.x TO d.x", [("other", "x"), ("d", "x")]),
    (b"rename table a to b, `o`.`c d` to d.e;", [(None, "a"), (None, "b"), ("o", "c d"), ("d", "e")]),
    (b"RENAME TABLE IF EXISTS a WAIT 5 TO b", [(None, "a"), (None, "b")]),
    (b"/* c */ ALTER TABLE d.x RENAME TO other.y", [("d", "x"), ("other", "y")]),
    (b"ALTER TABLE t ADD c INT, RENAME AS u", [(None, "t"), (None, "u")]),
    (b"ALTER TABLE t RENAME COLUMN a TO b", None),
    (b"ALTER TABLE t COMMENT 'x, rename to y'", None),
    (b"CREATE TABLE t (a INT)", None),
])
def test_renamed_tables(sql: bytes, names) -> None:
    assert renamed_tables(sql) == names


def test_a_rename_is_kept_when_the_filters_keep_either_name() -> None:
    from binreplay.model import QueryContext, QueryInfo

    def wants(sql: bytes, db: str = "other") -> bool:
        q = QueryInfo(thread_id=1, exec_time=0, error_code=0, db=db, sql=sql, context=QueryContext())
        return Filters.from_options(databases=["d"])._wants_statement(q, None, lambda m: None)  # type: ignore[arg-type]

    assert wants(b"RENAME TABLE other.x TO d.x")        # into d, whatever the default database
    assert wants(b"ALTER TABLE d.x RENAME TO other.x")  # out of d
    assert not wants(b"RENAME TABLE other.x TO other.y", db="d")
