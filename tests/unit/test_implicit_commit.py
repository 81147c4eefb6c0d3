"""Which MariaDB groups commit implicitly at their first statement (source/assembler.py): only CREATE
[OR REPLACE] TABLE ... SELECT logged as its CREATE then rows, not every group flagged DDL (MariaDB
flags any group holding a CREATE TEMPORARY TABLE); and the cut at that commit never drops a statement
(apply/batch_parts.py)."""

from __future__ import annotations

import pytest

from binreplay.apply.batch_parts import split_at_implicit_commit
from binreplay.binlog import constants as C
from binreplay.errors import ExitCode, UnsupportedError
from binreplay.model import Event, FormatDescription, MariadbGtid, QueryContext, QueryInfo, Transaction, TrxKind
from binreplay.source.assembler import OpenTransaction, _commits_implicitly

FDE = FormatDescription(4, "10.11.19-MariaDB", 0, 19, b"", 1, b"")
DDL_GROUP = MariadbGtid(0, 1, 5, flags=C.FL_DDL)


def _group(*sql: str, gtid: MariadbGtid = DDL_GROUP) -> OpenTransaction:
    g = OpenTransaction(100, gtid=gtid)
    for i, s in enumerate(sql):
        g.infos[i] = QueryInfo(7, 0, 0, "app", s.encode(), QueryContext())
        g.statements += s not in ("BEGIN", "COMMIT", "ROLLBACK")
    return g


@pytest.mark.parametrize(("sql", "implicit"), [
    # What MariaDB 10.11 logs for CREATE TABLE ... SELECT in row format: the CREATE with its columns.
    (("CREATE TABLE `c` (\n  `id` int(11) NOT NULL\n)", "COMMIT"), True),
    (("CREATE OR REPLACE TABLE `c` (\n  `id` int(11) NOT NULL\n)",), True),
    (("create table c select * from i",), True),
    # CREATE TEMPORARY TABLE in a group (STATEMENT/MIXED): flagged DDL, commits nothing.
    (("BEGIN", "CREATE TEMPORARY TABLE t4 (a INT)", "INSERT INTO i VALUES (7,'x')", "COMMIT"), False),
    (("BEGIN", "CREATE OR REPLACE TEMPORARY TABLE t (a INT)", "ROLLBACK"), False),
    (("BEGIN", "CREATE TEMPORARY TABLE ts SELECT * FROM i", "INSERT INTO i VALUES (9,'y')", "COMMIT"), False),
    (("BEGIN", "CREATE /*!32300 TEMPORARY */ TABLE t (a INT)", "COMMIT"), False),
    (("BEGIN", "INSERT INTO i VALUES (1,'x')", "CREATE TEMPORARY TABLE t (a INT)", "COMMIT"), False),
])
def test_only_a_create_table_first_commits_implicitly(sql: tuple[str, ...], implicit: bool) -> None:
    assert _commits_implicitly(_group(*sql)) is implicit


def test_without_the_ddl_flag_nothing_commits_implicitly() -> None:
    assert not _commits_implicitly(_group("CREATE TABLE `c` (`id` int)", gtid=MariadbGtid(0, 1, 5)))
    assert not _commits_implicitly(_group("BEGIN", "COMMIT"))


def _trx(*sql: str) -> Transaction:
    trx = Transaction(seq=0, file_index=0, file="bin.000001", start_pos=1000, end_pos=1500, timestamp=0,
                      kind=TrxKind.STATEMENT, fde=FDE, gtid=DDL_GROUP, implicit_commit=True)
    trx._events = [Event(C.QUERY_EVENT, 0, 1, 0, 1000 + i * 100, 1100 + i * 100, b"q%d" % i,
                         QueryInfo(7, 0, 0, "app", s.encode(), QueryContext())) for i, s in enumerate(sql)]
    return trx


def test_the_cut_keeps_a_create_and_what_ends_it() -> None:
    statement, rest = split_at_implicit_commit(_trx("CREATE TABLE `c` (`id` int)", "COMMIT"))
    assert statement is not None and statement.kind is TrxKind.DDL and rest is None


def test_the_cut_never_drops_a_statement_after_it() -> None:
    with pytest.raises(UnsupportedError) as caught:
        split_at_implicit_commit(_trx("CREATE TEMPORARY TABLE t4 (a INT)", "INSERT INTO i VALUES (7,'x')", "COMMIT"))
    assert caught.value.exit_code == ExitCode.UNSUPPORTED == 7
    message = str(caught.value)
    assert "bin.000001:1000" in message and "0-1-5" in message and "INSERT INTO i VALUES (7,'x')" in message
