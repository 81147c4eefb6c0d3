"""The corrupt-binlog corpus (tests/data/corrupt): how each file was made from the real fixtures.

Each case is the smallest damage that shows one class of issue 12 ("Hostile input"), applied to a
small fixture; the bytes are committed (tests/data/corrupt/<name>) so the regression cases stay
whatever this module becomes, and `tests/unit/test_corrupt_corpus.py` checks that they still
match what is built here, that the README lists each one, and what binreplay does with it.

Regenerate the files after changing a case:  python tests/support/corrupt_corpus.py
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":   # run as a script: the support modules are not on the path yet
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import binlog_mutations as M

from binreplay.binlog import constants as C

from data import DATA

CORPUS = DATA / "corrupt"

MYSQL_ROWS = "mysql/mc-8.0.40-minimal-row-image.000001"           # FDE PREV ANON_GTID BEGIN TABLE_MAP WRITE XID ROTATE
MYSQL_GTIDS = "mysql/percona-8.0.45-gtid.000001"                   # real GTIDs, 4 transactions
MYSQL_PAYLOAD = "mysql/mc-8.0.32-transaction-compression.000001"  # FDE PREV ANON_GTID TRANSACTION_PAYLOAD ROTATE
MARIADB_ROWS = "mariadb/mc-10.5.15-annotate-rows.000001"           # 2 row transactions, CRC32
MARIADB_SBR = "mariadb/mdbpoc-11.8.5-sbr-gtid.000007"              # statements; log_pos 0 inside transactions


@dataclass(frozen=True)
class Case:
    build: Callable[[], bytes]
    issue_class: str        # the class of issue 12 it is a regression case for
    exit_code: int          # what the reader, plan and replay --dry-run end with
    message: str            # a fragment of the error line ("" for a success)


# --- editing events -----------------------------------------------------------------------------

def _index(b: M.Binlog, t: int, n: int = 0) -> int:
    return [i for i, e in enumerate(b.events) if e.type == t][n]


def _event(b: M.Binlog, t: int, n: int = 0) -> M.Ev:
    return b.events[_index(b, t, n)]


def _crc_len(b: M.Binlog, ev: M.Ev) -> int:
    return 4 if b.crc or ev.type == C.FORMAT_DESCRIPTION_EVENT else 0


def body(b: M.Binlog, ev: M.Ev) -> bytearray:
    return ev.raw[C.HEADER_LEN:len(ev.raw) - _crc_len(b, ev)]


def set_body(b: M.Binlog, ev: M.Ev, new: bytes) -> None:
    ev.raw = ev.raw[:C.HEADER_LEN] + bytearray(new) + bytearray(_crc_len(b, ev))


def make_event(b: M.Binlog, t: int, payload: bytes, like: M.Ev) -> M.Ev:
    """A new event of type `t` with the header fields (time, server id) of `like`."""
    raw = bytearray(like.raw[:C.HEADER_LEN]) + bytearray(payload) + bytearray(4 if b.crc else 0)
    raw[4] = t
    struct.pack_into("<H", raw, 17, 0)
    struct.pack_into("<I", raw, 13, 1)          # join() sets its end position
    return M.Ev(raw, 0)


def first_transactions(b: M.Binlog, n: int) -> M.Binlog:
    """The file-level events at the start and the first `n` transactions (XID-terminated)."""
    xid = _index(b, C.XID_EVENT, n - 1)
    return M.Binlog(b.events[:xid + 1], b.crc)


def without_checksums(b: M.Binlog) -> M.Binlog:
    """The file as a server with binlog_checksum=NONE writes it (the FDE keeps its trailer)."""
    fde = b.events[0]
    fde.raw[-5] = 0
    for ev in b.events[1:]:
        ev.raw = ev.raw[:-4]
    return M.Binlog(b.events, False)


def done(b: M.Binlog, *, lengths: bool = True) -> bytes:
    return M.join(b, repair=True, lengths=lengths)


def _payload_inner(b: M.Binlog, ev: M.Ev) -> list[bytearray]:
    import zstandard

    data = bytes(body(b, ev))
    at = 0
    while True:
        code, at = M._packed(data, at)
        if code == 0:
            break
        length, at = M._packed(data, at)
        at += length
    inner = zstandard.ZstdDecompressor().decompress(data[at:], max_output_size=1 << 20)
    out, pos = [], 0
    while pos < len(inner):
        size = struct.unpack_from("<I", inner, pos + 9)[0]
        out.append(bytearray(inner[pos:pos + size]))
        pos += size
    return out


def set_payload(b: M.Binlog, ev: M.Ev, inner: bytes, *, declared: int | None = None,
                compressed: bytes | None = None) -> None:
    import zstandard

    data = zstandard.ZstdCompressor().compress(inner) if compressed is None else compressed
    size = len(inner) if declared is None else declared
    header = (bytes([2, 1, 0, 3]) + M._pack_int_field(size) + bytes([1]) + M._pack_int_field(len(data)) + b"\0")
    set_body(b, ev, header + data)


# --- the cases ----------------------------------------------------------------------------------

def unknown_rows_type() -> bytes:
    b = M.load(MYSQL_ROWS)
    _event(b, C.WRITE_ROWS_EVENT).raw[4] = 123        # no server writes type 123, not flagged ignorable
    return done(b)


def rows_type_of_another_server() -> bytes:
    b = M.load(MYSQL_ROWS)
    _event(b, C.WRITE_ROWS_EVENT).raw[4] = C.WRITE_ROWS_COMPRESSED_EVENT   # a MariaDB type in a MySQL file
    return done(b)


def table_map_rows_swapped() -> bytes:
    b = M.load(MYSQL_ROWS)
    i = _index(b, C.TABLE_MAP_EVENT)
    b.events[i], b.events[i + 1] = b.events[i + 1], b.events[i]
    return done(b)


def event_size_bit_flipped() -> bytes:
    b = M.load(MARIADB_ROWS)
    data = bytearray(M.join(b, repair=False))
    at = 4 + sum(len(e.raw) for e in b.events[:_index(b, C.WRITE_ROWS_EVENT_V1)])
    data[at + 10] ^= 0x10                             # the size's bit 12: 4 KiB more than the file holds
    return bytes(data)


def event_size_bit_flipped_no_end_position() -> bytes:
    b = first_transactions(M.load(MARIADB_SBR), 2)
    data = bytearray(M.join(b, repair=False))
    ev = _event(b, C.QUERY_EVENT, 1)
    assert ev.log_pos == 0                            # MariaDB 11.4+ inside a transaction: nothing to cross-check
    at = 4 + sum(len(e.raw) for e in b.events[:b.events.index(ev)])
    data[at + 11] ^= 0x01                             # the size's bit 16: 64 KiB more
    return bytes(data)


def fde_size_bit_flipped() -> bytes:
    data = bytearray((M.BINLOGS / MYSQL_ROWS).read_bytes())
    data[4 + 9] ^= 0x80                               # its end position still says 126
    return bytes(data)


def missing_xid() -> bytes:
    b = M.load(MARIADB_ROWS)
    del b.events[_index(b, C.XID_EVENT, 0)]
    return done(b)


def missing_xid_before_rotate() -> bytes:
    b = M.load(MYSQL_ROWS)
    del b.events[_index(b, C.XID_EVENT)]
    return done(b)


def fde_checksum_byte_zeroed() -> bytes:
    b = M.load(MYSQL_ROWS)
    b.events[0].raw[-5] = 0                           # "no checksums", the FDE's own CRC left as it was
    return M.join(b, repair=False)


def fde_checksum_byte_zeroed_crc_forged() -> bytes:
    b = M.load(MYSQL_ROWS)
    b.events[0].raw[-5] = 0
    M.set_crc(b.events[0].raw)                        # forged: only the events' own CRCs give it away
    return M.join(b, repair=False)


def rows_no_column_present() -> bytes:
    b = M.load(MYSQL_ROWS)
    ev = _event(b, C.WRITE_ROWS_EVENT)
    new = body(b, ev)
    assert new[10] == 5                               # 5 columns: the bitmap is the next byte
    new[11] = 0                                       # no column in the image, row bytes left behind
    set_body(b, ev, new)
    return done(b)


def payload_inner_event_size_0() -> bytes:
    b = without_checksums(M.load(MYSQL_PAYLOAD))
    ev = _event(b, C.TRANSACTION_PAYLOAD_EVENT)
    inner = _payload_inner(b, ev)
    struct.pack_into("<I", inner[1], 9, 0)            # the TABLE_MAP's size: 0
    set_payload(b, ev, b"".join(inner))
    return done(b)


def payload_declares(size: int) -> Callable[[], bytes]:
    def build() -> bytes:
        b = M.load(MYSQL_PAYLOAD)
        ev = _event(b, C.TRANSACTION_PAYLOAD_EVENT)
        set_payload(b, ev, b"".join(_payload_inner(b, ev)), declared=size)
        return done(b)
    return build


def payload_two_transactions() -> bytes:
    b = M.load(MYSQL_PAYLOAD)
    ev = _event(b, C.TRANSACTION_PAYLOAD_EVENT)
    inner = b"".join(_payload_inner(b, ev))
    set_payload(b, ev, inner + inner)                 # one applied, the other would be dropped
    return done(b)


def payload_not_zstd() -> bytes:
    b = M.load(MYSQL_PAYLOAD)
    ev = _event(b, C.TRANSACTION_PAYLOAD_EVENT)
    set_payload(b, ev, b"".join(_payload_inner(b, ev)), compressed=b"\x28\xb5\x2f\xfd" + bytes(40))
    return done(b)


def fde_body_too_short() -> bytes:
    b = M.load(MYSQL_ROWS)
    fde = b.events[0]
    fde.raw = fde.raw[:C.HEADER_LEN + 30] + bytearray(4)
    return done(M.Binlog(b.events[:1], b.crc))


def fde_query_post_header() -> bytes:
    b = M.load(MYSQL_ROWS)
    fde = b.events[0]
    at = C.HEADER_LEN + 57 + C.QUERY_EVENT - 1
    assert fde.raw[at] == 13
    fde.raw[at] = 45                                  # where QUERY bodies' status variables start
    return done(b)


def first_event_not_fde() -> bytes:
    b = M.load(MYSQL_ROWS)
    b.events[0].raw[4] = C.QUERY_EVENT
    return done(b)


def second_fde_same_server() -> bytes:
    b = M.load(MYSQL_ROWS)
    b.events.insert(2, b.events[0].copy())
    return done(b)


def _truncated_body(name: str, t: int, keep: int, n: int = 0) -> Callable[[], bytes]:
    def build() -> bytes:
        b = M.load(name)
        ev = _event(b, t, n)
        set_body(b, ev, body(b, ev)[:keep])
        return done(b)
    return build


def query_status_vars_overrun() -> bytes:
    b = M.load(MYSQL_ROWS)
    ev = _event(b, C.QUERY_EVENT)
    new = body(b, ev)
    sv_len = struct.unpack_from("<H", new, 11)[0]
    new[13 + sv_len - 3] = 1                          # the last status variable becomes SQL_MODE: 8 bytes
    return _with_body(b, ev, new)


def query_updated_db_names_unterminated() -> bytes:
    b = M.load(MYSQL_ROWS)
    ev = _event(b, C.QUERY_EVENT)
    post = body(b, ev)[:13]
    status = bytes([12, 3]) + b"abc"                  # Q_UPDATED_DB_NAMES: 3 names, none NUL-terminated
    post[8] = 0                                       # no default database
    struct.pack_into("<H", post, 11, len(status))
    return _with_body(b, ev, post + status + b"\0BEGIN")


def query_db_name_unterminated() -> bytes:
    b = M.load(MYSQL_ROWS)
    ev = _event(b, C.QUERY_EVENT)
    new = body(b, ev)
    new[8] += 1                                       # the name's length takes its NUL in
    return _with_body(b, ev, new)


def _with_body(b: M.Binlog, ev: M.Ev, new: bytes) -> bytes:
    set_body(b, ev, new)
    return done(b)


def compressed_query(garbage: bool) -> Callable[[], bytes]:
    def build() -> bytes:
        b = first_transactions(M.load(MARIADB_SBR), 1)
        ev = _event(b, C.QUERY_EVENT, 0)
        ev.raw[4] = C.QUERY_COMPRESSED_EVENT
        old = body(b, ev)
        sv_len = struct.unpack_from("<H", old, 11)[0]
        db_end = 13 + sv_len + old[8] + 1
        sql = bytes(old[db_end:])
        if garbage:
            packed = bytes([0x81, len(sql)]) + b"\x78\x9c" + bytes(len(sql))   # a zlib header, no stream
        else:
            packed = bytes([0x84]) + (0xFFFFFFFF).to_bytes(4, "big") + zlib.compress(sql)   # declares 4 GiB
        return _with_body(b, ev, bytes(old[:db_end]) + packed)
    return build


def _context_event(t: int, payload: bytes) -> Callable[[], bytes]:
    """An INTVAR, RAND or USER_VAR event before the first statement of a MariaDB transaction."""
    def build() -> bytes:
        b = first_transactions(M.load(MARIADB_SBR), 1)
        i = _index(b, C.QUERY_EVENT)
        b.events.insert(i, make_event(b, t, payload, b.events[i]))
        return done(b)
    return build


def rotate_body_too_short() -> bytes:
    b = M.load(MYSQL_ROWS)
    ev = _event(b, C.ROTATE_EVENT)
    set_body(b, ev, body(b, ev)[:3])
    return done(b)


def transaction_without_gtid() -> bytes:
    b = M.load(MYSQL_ROWS)
    del b.events[_index(b, C.ANONYMOUS_GTID_LOG_EVENT)]
    return done(b)


def gtid_number_zero() -> bytes:
    b = M.load(MYSQL_GTIDS)
    ev = _event(b, C.GTID_LOG_EVENT, 1)
    new = body(b, ev)
    new[17:25] = bytes(8)
    return _with_body(b, ev, new)


def transaction_length_mismatch() -> bytes:
    b = M.load(MYSQL_GTIDS)
    i = _index(b, C.WRITE_ROWS_EVENT)
    b.events.insert(i, b.events[i].copy())   # its rows applied twice
    return done(b, lengths=False)


def commit_without_begin() -> bytes:
    b = M.load(MYSQL_ROWS)
    begin = _index(b, C.QUERY_EVENT)
    commit = b.events[begin].copy()
    new = body(b, commit)
    set_body(b, commit, new[:-5] + b"COMMIT")
    b.events[_index(b, C.XID_EVENT)] = commit
    del b.events[begin]
    return done(b)


def file_level_event_in_transaction() -> bytes:
    b = M.load(MYSQL_ROWS)
    _event(b, C.WRITE_ROWS_EVENT).raw[4] = C.PREVIOUS_GTIDS_LOG_EVENT   # skipped as file-level before
    return done(b)


def informational_among_rows() -> bytes:
    b = M.load(MYSQL_ROWS)
    _event(b, C.WRITE_ROWS_EVENT).raw[4] = C.ROWS_QUERY_LOG_EVENT       # kept, never applied
    return done(b)


def statement_not_ended() -> bytes:
    b = M.load(MYSQL_ROWS)
    ev = _event(b, C.WRITE_ROWS_EVENT)
    ev.raw[C.HEADER_LEN + 6] &= ~C.STMT_END_F & 0xFF
    return done(b)


def events_after_rotate() -> bytes:
    b = M.load(MYSQL_ROWS)
    rotate = b.events.pop(_index(b, C.ROTATE_EVENT))
    b.events.insert(_index(b, C.ANONYMOUS_GTID_LOG_EVENT), rotate)
    return done(b)


def rows_event_too_short() -> bytes:
    b = M.load(MYSQL_ROWS)
    ev = _event(b, C.WRITE_ROWS_EVENT)
    set_body(b, ev, body(b, ev)[:5])
    return done(b)


def table_map_no_columns() -> bytes:
    b = M.load(MYSQL_ROWS)
    ev = _event(b, C.TABLE_MAP_EVENT)
    new = body(b, ev)
    at = 8 + 1 + new[8] + 1
    at += 1 + new[at] + 1                             # past both names: the column count
    return _with_body(b, ev, new[:at] + b"\x00\x00")


def not_utf8_index() -> bytes:
    return b"./binlog.000001\n\xff\xfe\xfd.000002\n"


CASES: dict[str, Case] = {
    "unknown-rows-type.000001": Case(unknown_rows_type, "rows event type byte unknown (CRC recomputed)", 3,
                                     "does not write this event type"),
    "rows-type-of-another-server.000001": Case(rows_type_of_another_server,
                                               "rows event type byte unknown (CRC recomputed)", 3,
                                               "does not write this event type"),
    "table-map-rows-swapped.000001": Case(table_map_rows_swapped, "TABLE_MAP and WRITE_ROWS swapped", 3,
                                          "which no TABLE_MAP event of its transaction maps"),
    "event-size-bit-flipped.000001": Case(event_size_bit_flipped, "one bit flipped in an event-size field", 3,
                                          "corrupt event header"),
    "event-size-bit-flipped-no-end-position.000007": Case(
        event_size_bit_flipped_no_end_position, "one bit flipped in an event-size field", 3,
        "runs past the end of the file, but a complete"),
    "fde-size-bit-flipped.000001": Case(fde_size_bit_flipped, "one bit flipped in an event-size field", 3,
                                        "corrupt event header"),
    "missing-xid.000001": Case(missing_xid, "missing XID mid-file", 3, "XID or COMMIT event is missing"),
    "missing-xid-before-rotate.000001": Case(missing_xid_before_rotate, "missing XID mid-file", 3,
                                             "stands inside the transaction"),
    "fde-checksum-byte-zeroed.000001": Case(fde_checksum_byte_zeroed, "FDE checksum byte zeroed", 3,
                                            "checksum mismatch"),
    "fde-checksum-byte-zeroed-crc-forged.000001": Case(fde_checksum_byte_zeroed_crc_forged,
                                                       "FDE checksum byte zeroed", 3, "ends with its CRC32"),
    "rows-no-column-present.000001": Case(rows_no_column_present, "rows event with no column present (row walker)",
                                          0, ""),
    "payload-inner-event-size-0.000001": Case(payload_inner_event_size_0,
                                              "TRANSACTION_PAYLOAD inner event of size 0 (no checksums)", 3,
                                              "has size 0"),
    "payload-declares-8GiB.000001": Case(payload_declares(8 << 30), "oversized zstd declared size", 3,
                                         "declares 8589934592 uncompressed bytes"),
    "payload-declares-1TiB.000001": Case(payload_declares(1 << 40), "oversized zstd declared size", 3,
                                         "declares 1099511627776 uncompressed bytes"),
    "payload-declares-less.000001": Case(payload_declares(10), "oversized zstd declared size", 3,
                                         "not the 10 it declares"),
    "payload-two-transactions.000001": Case(payload_two_transactions,
                                            "TRANSACTION_PAYLOAD inner events (one transaction only)", 3,
                                            "more than one transaction"),
    "payload-not-zstd.000001": Case(payload_not_zstd, "oversized zstd declared size (a stream that is not zstd)",
                                    3, "decompresses to 0 bytes, not the 179"),
    "fde-body-too-short.000001": Case(fde_body_too_short, "struct error in a FORMAT_DESCRIPTION body", 3,
                                      "a format description has at least 57"),
    "fde-query-post-header.000001": Case(fde_query_post_header, "struct error in a FORMAT_DESCRIPTION body", 3,
                                         "QUERY events have a post-header of 45 bytes"),
    "first-event-not-fde.000001": Case(first_event_not_fde, "wrong FORMAT_DESCRIPTION", 3,
                                       "not FORMAT_DESCRIPTION"),
    "second-fde-same-server.000001": Case(second_fde_same_server, "wrong FORMAT_DESCRIPTION", 3,
                                          "a second FORMAT_DESCRIPTION event"),
    "gtid-body-too-short.000001": Case(_truncated_body(MYSQL_ROWS, C.ANONYMOUS_GTID_LOG_EVENT, 10),
                                       "struct error in a GTID body", 3, "ANONYMOUS_GTID event at position 157"),
    "mariadb-gtid-body-too-short.000001": Case(_truncated_body(MARIADB_ROWS, C.MARIADB_GTID_EVENT, 9),
                                               "struct error in a GTID body", 3,
                                               "MARIADB_GTID event at position 330"),
    "gtid-number-zero.000001": Case(gtid_number_zero, "struct error in a GTID body", 3, "GNO 0 is out of range"),
    "table-map-body-too-short.000001": Case(_truncated_body(MYSQL_ROWS, C.TABLE_MAP_EVENT, 12),
                                            "struct error in a TABLE_MAP body", 3, "TABLE_MAP event at position 312"),
    "table-map-no-columns.000001": Case(table_map_no_columns, "struct error in a TABLE_MAP body", 3,
                                        "has no columns"),
    "rows-event-too-short.000001": Case(rows_event_too_short, "struct error in a rows event body", 3,
                                        "shorter than its header"),
    "query-body-too-short.000001": Case(_truncated_body(MYSQL_ROWS, C.QUERY_EVENT, 9), "struct error in a QUERY body",
                                        3, "QUERY event at position 236"),
    "query-status-vars-overrun.000001": Case(query_status_vars_overrun, "struct error in a QUERY body (status "
                                             "variables)", 3, "QUERY event at position 236"),
    "query-updated-db-names-unterminated.000001": Case(query_updated_db_names_unterminated,
                                                       "struct error in a QUERY body (updated-db names)", 3,
                                                       "QUERY event at position 236"),
    "query-db-name-unterminated.000001": Case(query_db_name_unterminated, "struct error in a QUERY body", 3,
                                              "not NUL-terminated"),
    "query-compressed-not-zlib.000007": Case(compressed_query(garbage=True),
                                             "struct error in a QUERY body (compressed query)", 3,
                                             "QUERY_COMPRESSED event at position 391"),
    "query-compressed-declares-4GiB.000007": Case(compressed_query(garbage=False),
                                                  "struct error in a QUERY body (compressed query)", 3,
                                                  "declares 4294967295 uncompressed bytes"),
    "rotate-body-too-short.000001": Case(rotate_body_too_short, "struct error in a ROTATE body", 3,
                                         "ROTATE event at position 451 is too short"),
    "user-var-body-too-short.000007": Case(_context_event(C.USER_VAR_EVENT, b"\x05\x00\x00\x00ab"),
                                           "struct error in a USER_VAR body", 3, "USER_VAR event at position 391"),
    "intvar-body-too-short.000007": Case(_context_event(C.INTVAR_EVENT, b"\x02\x01\x00"),
                                         "struct error in an INTVAR body", 3, "INTVAR event at position 391"),
    "rand-body-too-short.000007": Case(_context_event(C.RAND_EVENT, bytes(12)), "struct error in a RAND body", 3,
                                       "RAND event at position 391"),
    "xid-body-too-short.000001": Case(_truncated_body(MYSQL_ROWS, C.XID_EVENT, 3), "struct error in an XID body", 3,
                                      "XID event at position 420"),
    "transaction-without-gtid.000001": Case(transaction_without_gtid, "event deleted (GTID)", 3, "no GTID event"),
    "transaction-length-mismatch.000001": Case(transaction_length_mismatch, "event duplicated (rows applied twice)",
                                               3, "its GTID event says 277"),
    "commit-without-begin.000001": Case(commit_without_begin, "event deleted (BEGIN)", 3,
                                        "commits a transaction no BEGIN"),
    "file-level-event-in-transaction.000001": Case(file_level_event_in_transaction,
                                                   "rows event type byte changed to a skipped type", 3,
                                                   "stands inside the transaction"),
    "informational-among-rows.000001": Case(informational_among_rows,
                                            "rows event type byte changed to a skipped type", 3,
                                            "stands among the rows events of a statement"),
    "statement-not-ended.000001": Case(statement_not_ended, "rows event type byte changed to a skipped type", 3,
                                       "ends inside a statement"),
    "events-after-rotate.000001": Case(events_after_rotate, "events swapped (ROTATE moved)", 3,
                                       "follows the ROTATE event that closes the file"),
    "not-utf8.index": Case(not_utf8_index, "non-UTF-8 .index file", 3, "not UTF-8 text"),
}


def write_all() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, case in CASES.items():
        (CORPUS / name).write_bytes(case.build())


if __name__ == "__main__":
    write_all()
