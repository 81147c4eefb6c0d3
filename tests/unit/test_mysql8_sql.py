"""MySQL 8 specifics of `--apply sql`: compressed transactions (TRANSACTION_PAYLOAD) and partial JSON
updates (PARTIAL_UPDATE_ROWS), on the real MySQL 8 binlogs in tests/data/binlogs.

Every expected value names where it is documented:
- "rust_mysql_common test" = blackbeam/rust_mysql_common @0648371c, src/binlog/mod.rs, the test that
  reads each file of test-data/binlogs (the origin of the mc-* fixtures; see the fixtures' README);
- "fixture README" = tests/data/binlogs/README.md;
- "in the binlog" = a statement the file itself carries: the CREATE TABLE (QUERY event) or the
  original DML (ROWS_QUERY event, binlog_rows_query_log_events=ON) that produced the rows.

Decoding tests need no server. The end-to-end tests replay a fixture into the MariaDB `target`
sandbox after creating the fixture's tables there, and compare the target's rows with those
documented values (there is no source server to compare with: the source was a MySQL 8 server).
"""

from __future__ import annotations

import pytest

from binreplay.apply.sql_values import ColumnType, renderer
from binreplay.binlog import constants as C
from binreplay.binlog import json_diff
from binreplay.binlog import rows as R
from binreplay.binlog.mysql_json import binary_json_to_text
from binreplay.binlog.table_map import parse_table_map
from binreplay.binlog.table_meta import parse_table_meta
from binreplay.source.reader import BinlogReader

from data import MYSQL_BINLOGS as FIXTURES

JSON_FILE = "mc-8.0.22-json-partial-update.000001"
DOCS = ['{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}',
        '{"age": 32, "data": "yyyyyyyyyy", "name": "Sue"}',
        '{"age": 40, "data": "zzzzzzzzzz", "name": "Pete"}']


def transactions(name: str):
    return list(BinlogReader([FIXTURES / name]).transactions())


def decoded(name: str) -> list[tuple[str, str, tuple]]:
    """(table, rows event name, image) for every row image (compressed transactions included),
    each value rendered as the SQL literal --apply sql sends to a MariaDB target."""
    out, maps = [], {}
    for trx in transactions(name):
        fde = trx.fde
        for ev in trx.events:
            body = ev.raw[C.HEADER_LEN:len(ev.raw) - (C.CRC_LEN if fde.has_crc32 else 0)]
            phl = fde.post_header_lengths[ev.type_code - 1]
            if ev.type_code == C.TABLE_MAP_EVENT:
                tm = parse_table_map(body, phl)
                meta = parse_table_meta(tm, fde.flavor)
                render = [renderer(ColumnType(t, m, bool(meta.unsigned and meta.unsigned[i]), "utf8mb4"))
                          for i, (t, m) in enumerate(zip(tm.types, tm.metadata))]
                maps[tm.table_id] = (tm.table, R.RowWalker(tm), render)
            elif ev.type_code in C.ROWS_EVENTS and ev.type_code != C.PARTIAL_UPDATE_ROWS_EVENT:
                rows = R.parse_rows_event(ev.type_code, body, phl)
                table, walker, render = maps[rows.table_id]
                for image in walker.images(rows, tuple(range(rows.column_count))):
                    out.append((table, ev.name, tuple(v if v is None or v is R.ABSENT else render[i](v)
                                                      for i, v in enumerate(image))))
    return out


def text(literal: str) -> str:
    """A `_utf8mb4 X'..'` literal back to its text."""
    return bytes.fromhex(literal.split("X'", 1)[1].rstrip("'")).decode()


def rows_query(name: str) -> list[str]:
    """The original statements (ROWS_QUERY events) a file carries."""
    return [ev.raw[C.HEADER_LEN + 1:-C.CRC_LEN].decode() for trx in transactions(name) for ev in trx.events
            if ev.type_code == C.ROWS_QUERY_LOG_EVENT]


# --- decoding, no server -------------------------------------------------------------------------

def test_bit_columns() -> None:
    # rust_mysql_common test (mysql_type_bit.000001): after image [0b100], b"foo", [0b100000];
    # CREATE TABLE foo(a BIT(3), b TEXT, c BIT(8)) in the binlog.
    assert decoded("mc-8.0.26-bit-full-meta.000001") == [("foo", "WRITE_ROWS", ("4", "_utf8mb4 X'666f6f'", "32"))]


def test_enum_set_char_text_full_metadata() -> None:
    # rust_mysql_common test (mysql-enum-string-set.000001); CREATE TABLE t(f1 CHAR(128), f2 VARCHAR(300),
    # f3 ENUM('var1', 'variant2', 'foo'), f4 SET('one', 'two', 'three', 'four'), f5 TEXT) in the binlog.
    digits = "0123456789"
    long = ("01234567890123456789012345678901234567890123456789012345678901234567890123456789"
            "01234567890123456789012345678901234567890123456780123456789012345678901234567890"
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            "1234567890123456780123456789012345678901234567890123456789")   # as the test spells it
    first = (digits * 10, long, "1", "5", digits)            # ENUM 'var1', SET 0b101 = 'one,three'
    second = ("field1", "field_2", "2", "10", long)          # ENUM 'variant2', SET 0b1010 = 'two,four'
    got = [(ev, tuple(v if v.isdigit() else text(v) for v in image))
           for _, ev, image in decoded("mc-8.0.28-enum-set-full-meta.000001")]
    assert got == [("WRITE_ROWS", first), ("UPDATE_ROWS", first), ("UPDATE_ROWS", second), ("DELETE_ROWS", second)]


def test_invisible_columns_are_in_the_row_images() -> None:
    # CREATE TABLE t1 (f1 INT UNSIGNED INVISIBLE, f2 INT UNSIGNED INVISIBLE, f3 INT, f4 TEXT, f5 BLOB,
    # f6 BIGINT UNSIGNED INVISIBLE) in the binlog; fixture README: FULL metadata with COLUMN_VISIBILITY.
    # The values are the row bytes read by hand (the origin test checks only that the metadata parses);
    # 6000000000 needs f6's UNSIGNED BIGINT, the signedness comes from the metadata.
    (trx,) = [t for t in transactions("mc-8.0.26-invisible-columns-full-meta.000001")
              if any(e.type_code == C.TABLE_MAP_EVENT for e in t.events)][:1]
    tm_event = next(e for e in trx.events if e.type_code == C.TABLE_MAP_EVENT)
    tm = parse_table_map(tm_event.raw[C.HEADER_LEN:-C.CRC_LEN], trx.fde.post_header_lengths[C.TABLE_MAP_EVENT - 1])
    meta = parse_table_meta(tm, "mysql")
    assert meta.names == ("f1", "f2", "f3", "f4", "f5", "f6")
    assert meta.unsigned == (True, True, False, False, False, True)
    assert decoded("mc-8.0.26-invisible-columns-full-meta.000001") == [
        ("t1", "WRITE_ROWS", ("1", "2", "-3", "_utf8mb4 X'34'", "_utf8mb4 X'05'", "6000000000")),
        ("t1", "WRITE_ROWS", (None, None, "-33", "_utf8mb4 X'3434'", "_utf8mb4 X'55'", None)),
        ("t1", "UPDATE_ROWS", (None, None, "-33", "_utf8mb4 X'3434'", "_utf8mb4 X'55'", None)),
        ("t1", "UPDATE_ROWS", ("111", "222", "-333", "_utf8mb4 X'343434'", "_utf8mb4 X'55'", None)),
    ]


def test_minimal_row_image() -> None:
    # rust_mysql_common test (minimal_row_metadata.000001, its issue #162): column @4 is 3230202323 (an
    # unsigned INT, signedness from the metadata), column @2 has collation utf8mb4_0900_ai_ci (255);
    # fixture README: binlog_row_image=MINIMAL, so columns 1 and 3 are not in the image.
    ((table, ev, image),) = decoded("mc-8.0.40-minimal-row-image.000001")
    assert image[4] == "3230202323" and image[1] is R.ABSENT and image[3] is R.ABSENT
    assert image[0] == "1" and text(image[2]) == "a"
    trx = transactions("mc-8.0.40-minimal-row-image.000001")[0]
    tm_event = next(e for e in trx.events if e.type_code == C.TABLE_MAP_EVENT)
    tm = parse_table_map(tm_event.raw[C.HEADER_LEN:-C.CRC_LEN], trx.fde.post_header_lengths[C.TABLE_MAP_EVENT - 1])
    assert parse_table_meta(tm, "mysql").collations[2] == 255


def test_json_opaque_values_the_rest_of_the_file() -> None:
    # rust_mysql_common test (json-opaque.binlog), events 22 and 24 (the first six are pinned in
    # test_sql_apply.py): {"e": [0, 1, true, false]} and {"e": null}.
    docs = [text(image[0]) for _, _, image in decoded("mc-9.0.1-json-opaque.binlog")]
    assert docs[6:] == ['{"e": [0, 1, true, false]}', '{"e": null}']


def test_compressed_transaction_inner_events() -> None:
    # rust_mysql_common test (transaction_compression.000001): the payload holds QUERY, TABLE_MAP,
    # WRITE_ROWS, XID and nothing more; fixture README: 179 bytes uncompressed (no CRC inside).
    (trx,) = transactions("mc-8.0.32-transaction-compression.000001")
    inner = [e for e in trx.events if e.type_code not in C.GTID_EVENTS]
    assert [e.name for e in inner] == ["QUERY", "TABLE_MAP", "WRITE_ROWS", "XID"]
    assert sum(len(e.raw) - C.CRC_LEN for e in inner) == 179
    assert decoded("mc-8.0.32-transaction-compression.000001") == [("tb1", "WRITE_ROWS", ("1",))]


def test_compressed_transactions_decode_to_their_rows_query_statements() -> None:
    # In the binlog: ROWS_QUERY events (inside the payloads) with the statements that made the rows.
    name = "apecloud-8.0.31-gtid-payload-rowsquery.000057"
    statements = rows_query(name)
    assert statements[0] == "insert into b values(1)"
    assert statements[1].startswith("update test_table_3 set enum_field='large', set_field='c', \n"
                                    "product_item_2='product_3_value' where product_id=55555")
    rows = decoded(name)
    assert rows[0] == ("b", "WRITE_ROWS", ("1",))
    (_, _, before), (_, _, after), (_, _, inserted) = rows[1:]
    assert before[0] == after[0] == "55555"
    assert after[6] == "4" and after[7] == "4" and text(after[10]) == "product_3_value"   # 'large' is the 4th
    # insert into test_table_3 values(6666, 'product_item_value_2', now(), 111, 'description_1', now(),
    # 'large', 'd', 'b3', '{"c": 1}', 'product_item_2_value', now(), now(), 2222, 'description_3_value',
    # now(), now(), 222, 'description_4_value', now())
    assert [inserted[i] for i in (0, 3, 6, 7, 13, 17)] == ["6666", "111", "4", "8", "2222", "222"]
    assert [text(inserted[i]) for i in (1, 4, 8, 9, 10, 14, 18)] == [
        "product_item_value_2", "description_1", "b3", '{"c": 1}', "product_item_2_value",
        "description_3_value", "description_4_value"]


def _partial_rows():
    """The PARTIAL_UPDATE_ROWS event of the JSON fixture, walked."""
    trx = transactions(JSON_FILE)[-1]
    fde = trx.fde
    tm_ev = next(e for e in trx.events if e.type_code == C.TABLE_MAP_EVENT)
    ev = next(e for e in trx.events if e.type_code == C.PARTIAL_UPDATE_ROWS_EVENT)
    tm = parse_table_map(tm_ev.raw[C.HEADER_LEN:-C.CRC_LEN], fde.post_header_lengths[C.TABLE_MAP_EVENT - 1])
    rows = R.parse_rows_event(C.UPDATE_ROWS_EVENT, ev.raw[C.HEADER_LEN:-C.CRC_LEN],
                              fde.post_header_lengths[ev.type_code - 1])
    return json_diff.partial_rows(R.RowWalker(tm), rows)


def test_partial_json_update_decodes() -> None:
    """CREATE TABLE t(id INT PRIMARY KEY AUTO_INCREMENT, json_col JSON, name VARCHAR(100) AS
    (json_col->>'$.name'), age INT AS (json_col->'$.age')) in the binlog; fixture README: the one public
    type-39 sample. The diff sets $.age to the value the generated column `age` has in the same after
    image (MySQL computed it from the new document): 26, 34, 42 for the documents' 24/32/40 + 2."""
    rows = _partial_rows()
    assert [int.from_bytes(r.before[0], "little") for r in rows] == [1, 2, 3, 4, 5, 6]
    for r in rows:
        assert r.partial == {1}
        assert r.before[1:] == (R.ABSENT,) * 3           # MINIMAL before image: the key only
        (diff,) = json_diff.parse_diffs(r.after[1])
        age = int.from_bytes(r.after[3], "little", signed=True)
        assert (diff.operation, diff.path, binary_json_to_text(diff.value)) == (json_diff.REPLACE, "$.age", str(age))
        assert r.after[2] == r.after[2][:0] + {26: b"Joe", 34: b"Sue", 42: b"Pete"}[age]
    assert [int.from_bytes(r.after[3], "little") for r in rows] == [26, 34, 42, 26, 34, 42]


def test_partial_json_update_applied_to_the_document() -> None:
    """With a full before image the new document is computed (the text a full after image gives)."""
    rows = _partial_rows()
    new = [json_diff.apply_diffs(doc, json_diff.parse_diffs(r.after[1])) for doc, r in zip(DOCS, rows)]
    assert new == [d.replace('"age": 24', '"age": 26').replace('"age": 32', '"age": 34')
                   .replace('"age": 40', '"age": 42') for d in DOCS]


def _bin(text_: str) -> bytes:
    """A few binary JSON scalars (json_binary.h): type byte + value."""
    import struct
    if text_.startswith('"'):
        s = text_[1:-1].encode()
        return b"\x0c" + bytes([len(s)]) + s
    return {"true": b"\x04\x01", "null": b"\x04\x00"}.get(text_) or b"\x05" + struct.pack("<h", int(text_))


@pytest.mark.parametrize("doc,diffs,expected", [
    ('{"a": [1, 2, 3]}', [(json_diff.INSERT, "$.a[1]", '"x"')], '{"a": [1, "x", 2, 3]}'),
    ('{"a": [1, 2, 3]}', [(json_diff.INSERT, "$.a[9]", "7")], '{"a": [1, 2, 3, 7]}'),
    ('{"a": [1, 2, 3]}', [(json_diff.REMOVE, "$.a[last]", None)], '{"a": [1, 2]}'),
    ('{"a": [1, 2, 3]}', [(json_diff.REPLACE, "$.a[last-2]", "null")], '{"a": [null, 2, 3]}'),
    # a new member goes where MySQL keeps it: keys ordered by length, then bytes
    ('{"b": 1, "ccc": 2}', [(json_diff.INSERT, "$.aa", "true")], '{"b": 1, "aa": true, "ccc": 2}'),
    ('{"b": 1, "a b": {"x": 1.5e300}}', [(json_diff.REMOVE, '$."a b".x', None), (json_diff.REPLACE, "$.b", '"é"')],
     '{"b": "é", "a b": {}}'),
    ('{"n": 12345678901234567890, "f": 0.1}', [(json_diff.REPLACE, "$", "5")], "5"),
    ('{"n": 12345678901234567890, "f": 0.1}', [(json_diff.INSERT, "$.g", "1")],
     '{"f": 0.1, "g": 1, "n": 12345678901234567890}'),
])
def test_apply_diffs(doc: str, diffs, expected: str) -> None:
    got = json_diff.apply_diffs(doc, [json_diff.JsonDiff(op, path, None if v is None else _bin(v))
                                      for op, path, v in diffs])
    assert got == expected


# --- end to end, into the MariaDB target ------------------------------------------------------





















def test_partial_update_sets_with_a_full_before_image() -> None:
    """The fixture's before images are MINIMAL; here the documents its preceding full UPDATE left (the
    same rows, ages 25/33/41) stand in for a FULL before image: the whole new document is written."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Col:
        index: int
        name: str
        render: object

    full = [image for _, ev, image in _raw_images(JSON_FILE) if ev == "UPDATE_ROWS"][1::2]   # after images
    cols = [Col(1, "`json_col`", None)]
    for row, before in zip(_partial_rows(), full):
        row = json_diff.PartialRow(before, row.after, row.partial)
        (assignment,) = json_diff.partial_update_sets(cols, row, "mariadb")
        new = binary_json_to_text(before[1]).replace('"age": 25', '"age": 26').replace('"age": 33', '"age": 34') \
            .replace('"age": 41', '"age": 42')
        assert assignment == "`json_col`=" + json_diff.json_literal(new, "mariadb")
        assert json_diff.partial_update_sets(cols, row, "mysql") == [
            "`json_col`=CAST(" + json_diff.json_literal(new, "mariadb") + " AS JSON)"]
    minimal = _partial_rows()[0]
    assert json_diff.partial_update_sets(cols, minimal, "mariadb") == [
        "`json_col`=JSON_REPLACE(`json_col`, _utf8mb4 X'242e616765', JSON_EXTRACT(_utf8mb4 X'3236', '$'))"]


def _raw_images(name: str) -> list[tuple[str, str, tuple]]:
    out, maps = [], {}
    for trx in transactions(name):
        for ev in trx.events:
            body = ev.raw[C.HEADER_LEN:-C.CRC_LEN]
            phl = trx.fde.post_header_lengths[ev.type_code - 1]
            if ev.type_code == C.TABLE_MAP_EVENT:
                tm = parse_table_map(body, phl)
                maps[tm.table_id] = (tm.table, R.RowWalker(tm))
            elif ev.type_code in (C.WRITE_ROWS_EVENT, C.UPDATE_ROWS_EVENT):
                rows = R.parse_rows_event(ev.type_code, body, phl)
                table, walker = maps[rows.table_id]
                out += [(table, ev.name, image) for image in walker.images(rows, tuple(range(rows.column_count)))]
    return out
