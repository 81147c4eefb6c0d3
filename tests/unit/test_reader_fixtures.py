"""The reader against real binlog files written by MySQL 5.7/8.x/9.x and MariaDB servers."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from binreplay.binlog import constants as C
from binreplay.errors import (
    BadInputError,
    ChecksumError,
    PositionError,
    TruncatedError,
    UnsupportedError,
)
from binreplay.model import MariadbGtid, MysqlGtid, TrxKind
from binreplay.source.reader import BinlogReader

from data import BINLOGS as FIXTURES


def read(*names: str, **kw):
    warnings: list[str] = []
    r = BinlogReader([FIXTURES / n for n in names], on_warning=warnings.append, **kw)
    return list(r.transactions()), r, warnings


# (file, transactions, gtid events in the file per the fixture README)
EXPECTED = [
    ("mariadb/mc-10.5.15-annotate-rows.000001", 2),
    ("mariadb/mdbpoc-11.8.5-empty.000001", 0),
    ("mariadb/mdbpoc-11.8.5-sbr-gtid.000007", 63),
    ("mariadb/zalora-10.0.15-nochecksum-rows.07", 2),
    ("mysql/apecloud-8.0.31-gtid-payload-rowsquery.000057", 3),
    ("mysql/mc-8.0.17-hidden-gcol-two-fde.000001", 3),
    ("mysql/mc-8.0.2-dmr-empty.000001", 0),
    ("mysql/mc-8.0.22-json-partial-update.000001", 8),
    ("mysql/mc-8.0.26-bit-full-meta.000001", 3),
    ("mysql/mc-8.0.26-invisible-columns-full-meta.000001", 5),
    ("mysql/mc-8.0.28-enum-set-full-meta.000001", 5),
    ("mysql/mc-8.0.32-transaction-compression.000001", 1),
    ("mysql/mc-8.0.40-minimal-row-image.000001", 1),
    ("mysql/mc-8.0.40-previous-gtids-no-tag.000001", 0),
    ("mysql/mc-8.0.40-time2-negative.000001", 1),
    ("mysql/mc-9.0.1-json-opaque.binlog", 3),
    ("mysql/mc-9.0.1-vector-full-meta.binlog", 10),
    ("mysql/mc-9.6.0-gtid-tagged.000001", 1),
    ("mysql/osheroff-8.0.28-compressed-update.bin", 1),
    ("mysql/percona-8.0.45-gtid.000001", 4),
    ("mysql/percona-8.0.45-gtid.000002", 2),
    ("mysql/rustus-8.0.31-lineitem-dml.000733", 11),
    ("mysql/rustus-8.2.0-int-dml.000001", 5),
    ("mysql57/osheroff-5.7.20-checksum-none.bin", 40),
    ("mysql57/osheroff-5.7.21-checksum-crc32.bin", 60),
]


@pytest.mark.parametrize("name,count", EXPECTED)
def test_fixture_transaction_count(name: str, count: int) -> None:
    trxs, reader, warnings = read(name)
    assert len(trxs) == count
    assert not reader.stats.unknown_events
    assert not reader.stats.incomplete, warnings
    # transactions tile the file in order, never overlapping
    for a, b in zip(trxs, trxs[1:]):
        assert a.end_pos <= b.start_pos
    for t in trxs:
        assert t.events and t.end_pos > t.start_pos


def test_every_event_of_a_rows_transaction_is_kept_in_order() -> None:
    trxs, _, _ = read("mariadb/mc-10.5.15-annotate-rows.000001")
    names = [e.name for e in trxs[0].events]
    assert names == ["MARIADB_GTID", "ANNOTATE_ROWS", "TABLE_MAP", "WRITE_ROWS_V1", "XID"]
    assert trxs[0].kind is TrxKind.ROWS
    assert isinstance(trxs[0].gtid, MariadbGtid) and str(trxs[0].gtid) == "0-1-1"
    assert trxs[0].tables


def test_mariadb_statement_based_transactions_group_per_gtid() -> None:
    trxs, _, _ = read("mariadb/mdbpoc-11.8.5-sbr-gtid.000007")
    assert Counter(t.kind for t in trxs) == {TrxKind.STATEMENT: 63}
    seqs = [t.gtid.seq_no for t in trxs]
    assert seqs == sorted(seqs) and all(str(t.gtid).startswith("0-10-") for t in trxs)
    q = next(e.info for e in trxs[0].events if e.type_code == C.QUERY_EVENT)
    assert q.db == "sbtest-repl" and q.context.sql_mode is not None and q.context.charset is not None


def test_mysql_logical_clock_is_read_from_gtid_events() -> None:
    trxs, _, _ = read("mysql/mc-8.0.26-invisible-columns-full-meta.000001")
    clocks = [(t.gtid.last_committed, t.gtid.sequence_number) for t in trxs]
    assert clocks == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert all(isinstance(t.gtid, MysqlGtid) and not t.gtid.anonymous for t in trxs)


def test_ddl_is_standalone_and_rows_are_row_kind() -> None:
    trxs, _, _ = read("mysql/rustus-8.0.31-lineitem-dml.000733")
    kinds = Counter(t.kind for t in trxs)
    assert kinds[TrxKind.DDL] >= 2 and kinds[TrxKind.ROWS] >= 3
    ddl = next(t for t in trxs if t.kind is TrxKind.DDL)
    assert ddl.is_barrier


@pytest.mark.parametrize("name", ["mysql/mc-8.0.32-transaction-compression.000001",
                                  "mysql/osheroff-8.0.28-compressed-update.bin"])
def test_compressed_transaction_is_decompressed_not_skipped(name: str) -> None:
    trxs, _, _ = read(name)
    (trx,) = trxs
    assert trx.from_payload and trx.kind is TrxKind.ROWS
    inner = [e.name for e in trx.events]
    assert "TABLE_MAP" in inner and any(n.endswith("ROWS") for n in inner) and inner[-1] == "XID"


def test_rows_query_inside_a_payload() -> None:
    trxs, _, _ = read("mysql/apecloud-8.0.31-gtid-payload-rowsquery.000057")
    assert sum(e.type_code == C.ROWS_QUERY_LOG_EVENT for t in trxs for e in t.events) == 3


def test_unknown_event_is_reported_by_name() -> None:
    _, reader, warnings = read("mysql57/osheroff-5.7.12-aurora-event100.bin")
    assert reader.stats.unknown_events == {"UNKNOWN_EVENT_100": 1}
    assert any("unknown event type 100" in w for w in warnings)


def _percona_pair(tmp_path: Path) -> tuple[Path, Path]:
    """The pair under the names the server gave them (its ROTATE event names the next file)."""
    a, b = tmp_path / "binlog.000001", tmp_path / "binlog.000002"
    shutil.copy(FIXTURES / "mysql/percona-8.0.45-gtid.000001", a)
    shutil.copy(FIXTURES / "mysql/percona-8.0.45-gtid.000002", b)
    return a, b


def test_rotated_pair_reads_in_sequence_and_rejects_wrong_order(tmp_path: Path) -> None:
    a, b = _percona_pair(tmp_path)
    trxs = list(BinlogReader([a, b]).transactions())
    assert [t.file_index for t in trxs] == [0, 0, 0, 0, 1, 1]
    assert [t.gtid.gno for t in trxs] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(BadInputError, match="out of order"):
        list(BinlogReader([b, a]).transactions())
    c = tmp_path / "binlog.000003"
    shutil.copy(b, c)
    with pytest.raises(BadInputError, match="gap"):
        list(BinlogReader([a, c]).transactions())


def test_rotate_naming_another_file_is_rejected(tmp_path: Path) -> None:
    a = tmp_path / "binlog.000001"
    shutil.copy(FIXTURES / "mysql/percona-8.0.45-gtid.000001", a)
    other = tmp_path / "other.000002"
    shutil.copy(FIXTURES / "mysql/percona-8.0.45-gtid.000002", other)
    with pytest.raises(BadInputError, match="rotates to binlog.000002"):
        list(BinlogReader([a, other]).transactions())


def test_corrupt_checksum_is_detected(tmp_path: Path) -> None:
    src = FIXTURES / "mysql57/osheroff-5.7.21-checksum-crc32.bin"
    bad = tmp_path / "bad.000001"
    data = bytearray(src.read_bytes())
    trxs, _, _ = read("mysql57/osheroff-5.7.21-checksum-crc32.bin")
    data[trxs[10].start_pos + 25] ^= 0xFF
    bad.write_bytes(bytes(data))
    r = BinlogReader([bad])
    with pytest.raises(ChecksumError, match=f"position {trxs[10].start_pos}"):
        list(r.transactions())


def test_truncated_last_file_drops_only_the_partial_transaction(tmp_path: Path) -> None:
    trxs, _, _ = read("mysql57/osheroff-5.7.21-checksum-crc32.bin")
    cut = tmp_path / "cut.000001"
    data = (FIXTURES / "mysql57/osheroff-5.7.21-checksum-crc32.bin").read_bytes()
    middle = trxs[30].start_pos + (trxs[30].end_pos - trxs[30].start_pos) // 2
    cut.write_bytes(data[:middle])
    warnings: list[str] = []
    r = BinlogReader([cut], on_warning=warnings.append)
    got = list(r.transactions())
    assert len(got) == 30 and got[-1].end_pos == trxs[29].end_pos
    assert r.stats.incomplete and "not applied" in " ".join(warnings) or "incomplete" in " ".join(warnings)


def test_truncated_file_in_the_middle_of_a_sequence_is_an_error(tmp_path: Path) -> None:
    a = tmp_path / "binlog.000001"
    b = tmp_path / "binlog.000002"
    data = (FIXTURES / "mysql/percona-8.0.45-gtid.000001").read_bytes()
    a.write_bytes(data[:-10])
    shutil.copy(FIXTURES / "mysql/percona-8.0.45-gtid.000002", b)
    with pytest.raises(TruncatedError):
        list(BinlogReader([a, b]).transactions())


def test_start_position_inside_an_event_or_a_transaction(tmp_path: Path) -> None:
    trxs, _, _ = read("mysql/percona-8.0.45-gtid.000001")
    f = FIXTURES / "mysql/percona-8.0.45-gtid.000001"
    with pytest.raises(PositionError, match="inside an event"):
        list(BinlogReader([f], start_pos=trxs[1].start_pos + 3).transactions())
    second_event = trxs[1].events[1].start
    with pytest.raises(PositionError, match="inside a transaction"):
        list(BinlogReader([f], start_pos=second_event).transactions())
    got = list(BinlogReader([f], start_pos=trxs[2].start_pos).transactions())
    assert [t.start_pos for t in got] == [t.start_pos for t in trxs[2:]]


def test_not_a_binlog_and_missing_and_encrypted(tmp_path: Path) -> None:
    junk = tmp_path / "junk.000001"
    junk.write_bytes(b"hello world, not a binlog")
    with pytest.raises(BadInputError, match="bad magic"):
        list(BinlogReader([junk]).transactions())
    with pytest.raises(BadInputError, match="not found"):
        list(BinlogReader([tmp_path / "missing.000001"]).transactions())
    enc = tmp_path / "enc.000001"
    enc.write_bytes(b"\xfdbin" + b"\0" * 100)
    with pytest.raises(UnsupportedError, match="encrypted"):
        list(BinlogReader([enc]).transactions())


def test_a_start_at_the_very_end_of_a_file_reads_nothing_and_one_past_it_is_refused(tmp_path: Path) -> None:
    """A follow round resumes at its mark, which is the spool file's end until the fetch writes more."""
    a, b = _percona_pair(tmp_path)
    end = b.stat().st_size
    assert list(BinlogReader([a, b], start_file_index=1, start_pos=end).transactions()) == []
    with pytest.raises(BadInputError, match="beyond the end of the file"):
        list(BinlogReader([a, b], start_file_index=1, start_pos=end + 1).transactions())
