"""MySQL 8 specifics of `--apply sql`: compressed transactions (TRANSACTION_PAYLOAD) and partial JSON
updates (PARTIAL_UPDATE_ROWS), on the real MySQL 8 binlogs in /work/shared/fixtures/binlogs.

Every expected value names where it is documented:
- "rust_mysql_common test" = blackbeam/rust_mysql_common @0648371c, src/binlog/mod.rs, the test that
  reads each file of test-data/binlogs (the origin of the mc-* fixtures; see the fixtures' README);
- "fixture README" = /work/shared/fixtures/binlogs/README.md;
- "in the binlog" = a statement the file itself carries: the CREATE TABLE (QUERY event) or the
  original DML (ROWS_QUERY event, binlog_rows_query_log_events=ON) that produced the rows.

Decoding tests need no server. The end-to-end tests replay a fixture into the MariaDB `target`
sandbox after creating the fixture's tables there, and compare the target's rows with those
documented values (there is no source server to compare with: the source was a MySQL 8 server).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from binreplay.binlog import json_diff
from binreplay.binlog import constants as C
from binreplay.binlog import rows as R
from binreplay.binlog.table_meta import parse_table_meta
from binreplay.binlog.mysql_json import binary_json_to_text
from binreplay.source.reader import BinlogReader
from binreplay.apply.sql_values import ColumnType, renderer
from helpers import run_binreplay

FIXTURES = Path("/work/shared/fixtures/binlogs/mysql")
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")

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
                tm = R.parse_table_map(body, phl)
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
    long = ("01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
            "01234567890123456780123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"
            "123456789012345678901234567890123456780123456789012345678901234567890123456789")   # as the test spells it
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
    tm = R.parse_table_map(tm_event.raw[C.HEADER_LEN:-C.CRC_LEN], trx.fde.post_header_lengths[C.TABLE_MAP_EVENT - 1])
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
    tm = R.parse_table_map(tm_event.raw[C.HEADER_LEN:-C.CRC_LEN], trx.fde.post_header_lengths[C.TABLE_MAP_EVENT - 1])
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
    tm = R.parse_table_map(tm_ev.raw[C.HEADER_LEN:-C.CRC_LEN], fde.post_header_lengths[C.TABLE_MAP_EVENT - 1])
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

def replay_sql(target, fixture: str, *extra: str):
    return run_binreplay("replay", str(FIXTURES / fixture), *target.connection_flags(), "--progress", "none",
                         "--apply", "sql", *extra)


def ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"


def test_compressed_transaction_replays_in_sql_mode(clean_servers) -> None:
    _, target = clean_servers
    fixture = "mc-8.0.32-transaction-compression.000001"
    # No CREATE TABLE in the file: the TABLE_MAP says test.tb1 has one INT column (named from the target).
    target.execute("CREATE DATABASE test")
    target.execute("CREATE TABLE test.tb1 (id INT)")
    refused = run_binreplay("replay", str(FIXTURES / fixture), *target.connection_flags(), "--progress", "none")
    assert refused.returncode == 7 and "--apply sql" in refused.stderr, refused.stderr
    assert target.execute("SELECT COUNT(*) FROM test.tb1") == [(0,)]
    ok(replay_sql(target, fixture, "--restart"))
    assert target.execute("SELECT id FROM test.tb1") == [(1,)]


APECLOUD_TABLE = """CREATE TABLE a.test_table_3 (
  product_id INT, product_item VARCHAR(255) CHARACTER SET utf8mb3, d1 DATE, i1 INT,
  description_1 TEXT CHARACTER SET utf8mb3, ts1 TIMESTAMP NULL DEFAULT NULL,
  enum_field ENUM('e1', 'e2', 'e3', 'large'), set_field SET('a', 'b', 'c', 'd'), b BINARY(3), j JSON,
  product_item_2 VARCHAR(255) CHARACTER SET utf8mb3, d2 DATE, d3 DATE, i2 INT,
  description_3 TEXT CHARACTER SET utf8mb3, ts2 TIMESTAMP NULL DEFAULT NULL, d4 DATE, i3 INT,
  description_4 TEXT CHARACTER SET utf8mb3, ts3 TIMESTAMP NULL DEFAULT NULL)"""


def test_compressed_transactions_with_rows_query_replay_in_sql_mode(clean_servers) -> None:
    """Two compressed transactions (an INSERT, then an UPDATE and an INSERT), after the file's own
    `create table b(id int)`, replayed too: its MySQL 8 session context (default_collation_for_utf8mb4,
    which MariaDB lacks) is translated (cross_flavor.py). test_table_3 has no CREATE TABLE in the file: its
    columns are built from the TABLE_MAP (types, charsets: 33 = utf8, 63 = binary) with the names the
    ROWS_QUERY statements use, and ENUM/SET members placed where the logged indexes put 'large',
    'c' and 'd'. The row the UPDATE changes existed before the binlog: it is restored from the update's
    before image, as a backup would have it."""
    _, target = clean_servers
    name = "apecloud-8.0.31-gtid-payload-rowsquery.000057"
    target.execute("CREATE DATABASE a")
    target.execute(APECLOUD_TABLE)
    with target.connect() as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute("INSERT INTO a.test_table_3 VALUES (55555, 'product_item_value_2', '2022-11-20', 111, "
                    "'description_1', '2022-11-20 13:40:30', 'large', 'd', 'b3', '{\"c\": 1}', "
                    "'product_item_2_value', '2022-11-20', '2022-11-20', 2222, 'description_3_value', "
                    "'2022-11-20 13:40:30', '2022-11-20', 222, 'description_4_value', '2022-11-20 13:40:30')")
    create = next(t for t in transactions(name) if t.kind.value == "ddl")
    assert create.events[1].info.sql == b"create table b(id int)"
    assert create.events[1].info.context.default_collation_for_utf8mb4 == 255
    ok(replay_sql(target, name, "--start-position", str(create.start_pos)))
    assert target.execute("SELECT id FROM a.b") == [(1,)]                      # insert into b values(1)
    rows = target.execute("SELECT product_id, product_item, i1, description_1, enum_field, set_field, b, j, "
                          "product_item_2, i2, description_3, i3, description_4 FROM a.test_table_3 "
                          "ORDER BY product_id")
    assert rows == [
        # insert into test_table_3 values(6666, 'product_item_value_2', now(), 111, 'description_1', now(),
        # 'large', 'd', 'b3', '{"c": 1}', 'product_item_2_value', ..., 2222, 'description_3_value', ...,
        # 222, 'description_4_value', now())
        (6666, "product_item_value_2", 111, "description_1", "large", "d", b"b3\0", '{"c": 1}',
         "product_item_2_value", 2222, "description_3_value", 222, "description_4_value"),
        # update test_table_3 set enum_field='large', set_field='c', product_item_2='product_3_value'
        # where product_id=55555
        (55555, "product_item_value_2", 111, "description_1", "large", "c", b"b3\0", '{"c": 1}',
         "product_3_value", 2222, "description_3_value", 222, "description_4_value"),
    ]


ENUM_FILE = "mc-8.0.28-enum-set-full-meta.000001"


def test_mysql8_session_context_is_translated_for_mariadb_in_sql_mode(clean_servers) -> None:
    """The fixture's CREATE TABLE (in `mysql`, replayed into fx) runs with MySQL 8's context: collation
    255 (utf8mb4_0900_ai_ci) for client, connection and server, default_collation_for_utf8mb4 = 255.
    --apply binlog sends that context exactly and MariaDB refuses it; --apply sql runs the statement with
    MariaDB's default utf8mb4 collation (warned once) and skips the MySQL-only variable. Stopped after
    the second UPDATE, the row is the one test_enum_set_char_text_full_metadata pins."""
    _, target = clean_servers
    target.execute("CREATE DATABASE fx")
    create, *rows = [t for t in transactions(ENUM_FILE) if t.kind.value in ("ddl", "rows")][-4:]
    assert create.events[1].info.sql.startswith(b"CREATE TABLE t(")
    assert create.events[1].info.context.charset == (255, 255, 255)
    flags = ("--rewrite-db", "mysql->fx", "--start-position", str(create.start_pos))
    exact = run_binreplay("replay", str(FIXTURES / ENUM_FILE), *target.connection_flags(), "--progress", "none",
                          *flags)
    assert exact.returncode == 4 and "Unknown character set: '255'" in exact.stderr, exact.stderr
    assert not target.execute("SHOW TABLES IN fx")
    result = replay_sql(target, ENUM_FILE, *flags, "--stop-position", str(rows[1].end_pos), "--restart")
    ok(result)
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert warnings == ["binreplay: WARNING: collation id 255 (utf8mb4_0900_ai_ci) is unknown to the target; "
                        "using its default utf8mb4 collation utf8mb4_general_ci instead"], result.stderr
    assert target.execute("SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'fx'") == [
        ("utf8mb4_general_ci",)]
    assert target.execute("SELECT f1, f2, f3, f4 FROM fx.t") == [("field1", "field_2", "variant2", "two,four")]


def test_mysql8_collation_names_in_statement_text(clean_servers) -> None:
    """Only a COLLATE clause naming a collation the target lacks is changed; the same name in a string
    literal or a comment stays, a name the target knows stays, a statement without one is the same bytes.
    The translated statement runs on the MariaDB target."""
    from binreplay.apply.cross_flavor import ContextTranslation, load_default_collations
    from binreplay.server.connection import load_collations

    _, target = clean_servers
    with target.connect() as conn:
        translation = ContextTranslation("mariadb", load_collations(conn), load_default_collations(conn))
    sql = ("CREATE TABLE fx.c (a VARCHAR(10) COLLATE utf8mb4_0900_ai_ci, "
           "b VARCHAR(30) CHARACTER SET utf8mb4 COLLATE `utf8mb4_de_pb_0900_as_cs` DEFAULT 'COLLATE utf8mb4_0900_bin', "
           "c VARCHAR(10) COLLATE utf8mb4_bin) /* COLLATE utf8mb4_0900_ai_ci */ "
           "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_as_cs")
    mapped = translation.statement(sql.encode()).decode()
    assert mapped == sql.replace("COLLATE utf8mb4_0900_ai_ci,", "COLLATE utf8mb4_general_ci,").replace(
        "`utf8mb4_de_pb_0900_as_cs`", "`utf8mb4_general_ci`").replace("=utf8mb4_0900_as_cs", "=utf8mb4_general_ci")
    plain = b"INSERT INTO t VALUES ('utf8mb4_0900_ai_ci')"
    assert translation.statement(plain) is plain
    target.execute("CREATE DATABASE fx")
    target.execute(mapped)
    assert target.execute("SELECT COLUMN_NAME, COLLATION_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS "
                          "WHERE TABLE_SCHEMA = 'fx' ORDER BY ORDINAL_POSITION") == [
        ("a", "utf8mb4_general_ci", "NULL"), ("b", "utf8mb4_general_ci", "'COLLATE utf8mb4_0900_bin'"),
        ("c", "utf8mb4_bin", "NULL")]


def test_partial_json_updates_replay_in_sql_mode(clean_servers) -> None:
    """The JSON fixture from its first row transaction, into database fx (--rewrite-db mysql->fx; the file
    writes to `mysql`.t). The table is the binlog's CREATE TABLE in MariaDB's syntax (`->>`/`->` become
    JSON_UNQUOTE(JSON_EXTRACT())/JSON_EXTRACT()). After the inserts, a full UPDATE (age + 1) and the
    partial update ($.age set to 26/34/42, test_partial_json_update_decodes), each document is the
    origin's with its age 2 higher, and the generated columns agree."""
    _, target = clean_servers
    target.execute("CREATE DATABASE fx")
    target.execute("CREATE TABLE fx.t(id INT PRIMARY KEY AUTO_INCREMENT, json_col JSON, "
                   "name VARCHAR(100) AS (JSON_UNQUOTE(JSON_EXTRACT(json_col, '$.name'))), "
                   "age INT AS (JSON_EXTRACT(json_col, '$.age')))")
    first_rows = next(t for t in transactions(JSON_FILE) if t.tables)
    result = replay_sql(target, JSON_FILE, "--rewrite-db", "mysql->fx", "--start-position", str(first_rows.start_pos))
    ok(result)
    expected = [d.replace('"age": 24', '"age": 26').replace('"age": 32', '"age": 34').replace('"age": 40', '"age": 42')
                for d in DOCS]
    rows = target.execute("SELECT id, json_col, name, age FROM fx.t ORDER BY id")
    assert rows == [(i + 1, expected[i % 3], ("Joe", "Sue", "Pete")[i % 3], (26, 34, 42)[i % 3]) for i in range(6)]


def test_partial_json_updates_in_binlog_mode_are_rejected_by_a_mariadb_target(clean_servers) -> None:
    """--apply binlog re-sends the partial update as it is; MariaDB rejects a MySQL type-39 event in a
    BINLOG statement (error 1730, exit 4), with nothing of that transaction applied: --apply sql is the way."""
    _, target = clean_servers
    target.execute("CREATE DATABASE fx")
    target.execute("CREATE TABLE fx.t(id INT PRIMARY KEY, json_col JSON, name VARCHAR(100), age INT)")
    last = transactions(JSON_FILE)[-1]
    result = run_binreplay("replay", str(FIXTURES / JSON_FILE), *target.connection_flags(), "--progress", "none",
                           "--rewrite-db", "mysql->fx", "--start-position", str(last.start_pos))
    assert result.returncode == 4 and "Update_rows_partial" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert target.execute("SELECT COUNT(*) FROM fx.t") == [(0,)]


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
                tm = R.parse_table_map(body, phl)
                maps[tm.table_id] = (tm.table, R.RowWalker(tm))
            elif ev.type_code in (C.WRITE_ROWS_EVENT, C.UPDATE_ROWS_EVENT):
                rows = R.parse_rows_event(ev.type_code, body, phl)
                table, walker = maps[rows.table_id]
                out += [(table, ev.name, image) for image in walker.images(rows, tuple(range(rows.column_count)))]
    return out
