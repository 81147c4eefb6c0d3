"""Conflict keys from real binlogs of a real source, with table definitions from a real target."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pymysql
import pytest

from binreplay.devtools.sandbox import Sandbox
from binreplay.model import Transaction, TrxKind
from binreplay.schedule.keys import KeySet, transaction_keys
from binreplay.server.tables import SchemaCache
from binreplay.source.reader import BinlogReader

DB = "k"


# ---- helpers ------------------------------------------------------------------

def create(source: Sandbox, target: Sandbox, *ddl: str) -> None:
    """The same definitions on both servers, as after restoring a backup."""
    for server in (source, target):
        server.execute(f"CREATE DATABASE {DB}")
        for sql in ddl:
            server.execute(sql)


def run(source: Sandbox, *statements: str, session: tuple[str, ...] = ()) -> None:
    """Statements in one fresh source session (session settings stay out of the cached one)."""
    with source.connect(DB) as conn, conn.cursor() as cur:
        for sql in session + statements:
            cur.execute(sql)


def row_trxs(source: Sandbox) -> list[Transaction]:
    source.execute("FLUSH BINARY LOGS")
    return [t for t in BinlogReader(source.binlog_files()).transactions() if t.kind is TrxKind.ROWS]


@pytest.fixture
def schema(clean_servers: tuple[Sandbox, Sandbox]) -> Iterator[SchemaCache]:
    conn = clean_servers[1].connect()
    try:
        yield SchemaCache(conn)
    finally:
        conn.close()


def all_keys(source: Sandbox, schema: SchemaCache, mode: str = "row") -> list[KeySet]:
    return [transaction_keys(t, schema, mode) for t in row_trxs(source)]


def rows(keys: KeySet, index: str = "PRIMARY", table: str = "t") -> set[tuple]:
    return {k[4] for k in keys if k[0] == "row" and k[2] == table and k[3] == index}


def exclusive(keys: KeySet, key: tuple) -> bool:
    return keys.get(key) is True


# ---- primary keys -------------------------------------------------------------

def test_same_primary_key_same_key_across_transactions(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, v VARCHAR(20))")
    run(source, "INSERT INTO t VALUES (1, 'a')", "UPDATE t SET v = 'b' WHERE id = 1",
        "DELETE FROM t WHERE id = 1", "INSERT INTO t VALUES (2, 'a')")
    k = all_keys(source, schema)
    assert [rows(x) for x in k] == [{(1,)}, {(1,)}, {(1,)}, {(2,)}]
    for keys in k:
        assert keys[("tbl", DB, "t")] is False
        assert keys[("idx", DB, "t", "PRIMARY")] is False
        assert all(v is True for key, v in keys.items() if key[0] == "row")


def test_no_row_events_no_keys(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY)")
    trxs = [t for t in BinlogReader(source.binlog_files()).transactions()]
    assert trxs and all(transaction_keys(t, schema) == {} for t in trxs)


def test_composite_primary_key_of_several_types(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (a INT, b VARCHAR(20), c DATETIME(6), v INT, "
                           "PRIMARY KEY (a, b, c))")
    run(source,
        "INSERT INTO t VALUES (5, 'Abc', '2024-01-02 03:04:05.123456', 0)",
        "UPDATE t SET v = 1 WHERE a = 5",
        "INSERT INTO t VALUES (5, 'abc', '2024-01-02 03:04:05.123457', 0)")
    first, second, third = (rows(k) for k in all_keys(source, schema))
    assert first == second and len(first) == 1
    (a, b, c), = first
    assert (a, b) == (5, b"abc") and isinstance(c, bytes)
    (a3, b3, c3), = third
    assert (a3, b3) == (5, b"abc") and c3 != c   # one microsecond apart: another row


def test_decimal_keys_by_value(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (d DECIMAL(10, 2) PRIMARY KEY, e DECIMAL(30, 12) UNIQUE)")
    run(source, "INSERT INTO t VALUES (1.10, -123456789012345678.000000000001)", "DELETE FROM t",
        "INSERT INTO t VALUES (1.1, 0)", "INSERT INTO t VALUES (-0.5, 2)")
    k = all_keys(source, schema)
    assert rows(k[0]) == rows(k[1]) == rows(k[2]) == {(Decimal("1.1"),)}
    assert rows(k[0], "e") == {(Decimal("-123456789012345678.000000000001"),)}
    assert rows(k[2], "e") == {(Decimal(0),)}
    assert rows(k[3]) == {(Decimal("-0.5"),)} and rows(k[3], "e") == {(Decimal(2),)}


def test_integer_extremes_and_signedness(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (u BIGINT UNSIGNED PRIMARY KEY, s BIGINT UNIQUE, "
                           "m MEDIUMINT UNIQUE, t TINYINT UNSIGNED UNIQUE)")
    run(source, "INSERT INTO t VALUES (18446744073709551615, -9223372036854775808, -8388608, 255)",
        "INSERT INTO t VALUES (0, 9223372036854775807, 8388607, 0)")
    k = all_keys(source, schema)
    assert rows(k[0]) == {(18446744073709551615,)}
    assert rows(k[0], "s") == {(-9223372036854775808,)} and rows(k[0], "m") == {(-8388608,)}
    assert rows(k[0], "t") == {(255,)}
    assert rows(k[1], "s") == {(9223372036854775807,)} and rows(k[1], "m") == {(8388607,)}


def test_float_negative_zero_is_zero(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (f DOUBLE PRIMARY KEY, g FLOAT UNIQUE)")
    run(source, "INSERT INTO t VALUES (-0e0, 1.5)", "DELETE FROM t", "INSERT INTO t VALUES (0e0, 1.5)")
    k = all_keys(source, schema)
    assert rows(k[0]) == rows(k[2]) == {(0.0,)}
    assert rows(k[0], "g") == rows(k[2], "g") == {(1.5,)}


# ---- strings and collations -----------------------------------------------------

def test_case_insensitive_collation_folds_case_and_trailing_spaces(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target,
           f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, "
           "u VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci UNIQUE, "
           "c CHAR(5) CHARACTER SET latin1 COLLATE latin1_swedish_ci UNIQUE, "
           "w VARCHAR(20) CHARACTER SET utf16 COLLATE utf16_unicode_ci UNIQUE)")
    run(source, "INSERT INTO t VALUES (1, 'a', 'Xy', 'Ab')", "DELETE FROM t",
        "INSERT INTO t VALUES (2, 'A', 'xY ', 'aB')", "DELETE FROM t",
        "INSERT INTO t VALUES (3, 'a  ', 'XY', 'AB  ')", "INSERT INTO t VALUES (4, 'b', 'z', 'c')")
    k = all_keys(source, schema)
    assert rows(k[0], "u") == rows(k[2], "u") == rows(k[4], "u") == {(b"a",)}
    assert rows(k[0], "c") == rows(k[2], "c") == rows(k[4], "c") == {(b"xy",)}
    assert rows(k[0], "w") == rows(k[2], "w") == rows(k[4], "w") == {(b"ab",)}
    assert rows(k[5], "u") == {(b"b",)}


def test_bin_collation_keeps_case_but_not_trailing_spaces(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, "
                           "u VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin UNIQUE)")
    run(source, "INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (2, 'A')", "DELETE FROM t",
        "INSERT INTO t VALUES (3, 'a  ')", "INSERT INTO t VALUES (4, 'ä')")
    k = all_keys(source, schema)
    assert rows(k[0], "u") == {(b"a",)} and rows(k[1], "u") == {(b"A",)}
    assert rows(k[3], "u") == {(b"a",)}
    assert rows(k[4], "u") == {("ä".encode(),)}   # _bin: exact bytes are safe for any character


def test_non_ascii_in_a_ci_collation_is_index_wide(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, "
                           "u VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci UNIQUE)")
    run(source, "INSERT INTO t VALUES (1, 'ä')", "DELETE FROM t", "INSERT INTO t VALUES (2, 'A')")
    first, delete, second = all_keys(source, schema)
    assert rows(first, "u") == rows(delete, "u") == set() and rows(first) == {(1,)}
    # 'ä' = 'A' here: the index-wide exclusive key conflicts with the shared one of any 'A'.
    assert exclusive(first, ("idx", DB, "t", "u")) and exclusive(delete, ("idx", DB, "t", "u"))
    assert second[("idx", DB, "t", "u")] is False and rows(second, "u") == {(b"a",)}


def test_collations_with_odd_ascii_equalities_are_never_folded(clean_servers, schema) -> None:
    source, target = clean_servers
    # utf8mb4_roman_ci: I = J and U = V; lower() would key them apart.
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, "
                           "u VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_roman_ci UNIQUE)")
    run(source, "INSERT INTO t VALUES (1, 'IVS')")
    (keys,) = all_keys(source, schema)
    assert rows(keys, "u") == set() and exclusive(keys, ("idx", DB, "t", "u"))
    assert schema.ascii_folding_safe("utf8mb4", "utf8mb4_general_ci")
    assert schema.ascii_folding_safe("utf8mb4", "utf8mb4_unicode_ci")
    assert not schema.ascii_folding_safe("swe7", "swe7_swedish_ci")   # '[' is 'Ä' there


def test_binary_strings(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, b BINARY(4) UNIQUE, "
                           "vb VARBINARY(10) UNIQUE)")
    run(source, "INSERT INTO t VALUES (1, 'a', 'a')", "INSERT INTO t VALUES (2, 'A', 'a ')",
        "DELETE FROM t WHERE id = 1", "INSERT INTO t VALUES (3, X'6100', X'6100')")
    k = all_keys(source, schema)
    assert rows(k[0], "b") == {(b"a",)} and rows(k[1], "b") == {(b"A",)}
    assert rows(k[0], "vb") == {(b"a",)} and rows(k[1], "vb") == {(b"a ",)}   # no padding in VARBINARY
    assert rows(k[3], "b") == {(b"a",)}        # BINARY(4) pads 'a' with \0: X'6100' is the same value
    assert rows(k[3], "vb") == {(b"a\0",)}


def test_prefix_unique_index_keys_on_the_prefix(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, v VARCHAR(20) COLLATE utf8mb4_general_ci, "
                           "b VARBINARY(20), UNIQUE KEY pv (v(3)), UNIQUE KEY pb (b(2)))")
    run(source, "INSERT INTO t VALUES (1, 'abcd', 'xyz')", "DELETE FROM t",
        "INSERT INTO t VALUES (2, 'ABCe', 'xyQ')")
    k = all_keys(source, schema)
    assert rows(k[0], "pv") == rows(k[2], "pv") == {(b"abc",)}
    assert rows(k[0], "pb") == rows(k[2], "pb") == {(b"xy",)}


# ---- NULLs, tables without keys, unknown tables -----------------------------------

def test_null_unique_parts_give_no_row_key(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY ab (a, b))")
    run(source, "INSERT INTO t VALUES (1, 7, NULL)", "INSERT INTO t VALUES (2, 7, 8)")
    first, second = all_keys(source, schema)
    assert rows(first, "ab") == set() and ("idx", DB, "t", "ab") not in first
    assert rows(first) == {(1,)}
    assert rows(second, "ab") == {(7, 8)}


def test_row_named_only_by_null_unique_values_takes_the_table(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (a INT UNIQUE, v INT)")
    run(source, "INSERT INTO t VALUES (NULL, 1)", "INSERT INTO t VALUES (3, 1)")
    first, second = all_keys(source, schema)
    assert exclusive(first, ("tbl", DB, "t"))   # nothing else could name that row later
    assert second[("tbl", DB, "t")] is False and rows(second, "a") == {(3,)}


def test_table_without_key_is_keyed_as_a_whole(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (a INT, b INT, KEY (a))")
    run(source, "INSERT INTO t VALUES (1, 1)")
    (keys,) = all_keys(source, schema)
    assert keys == {("tbl", DB, "t"): True}


def test_unknown_or_different_table_on_target_is_keyed_as_a_whole(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY)")
    source.execute(f"CREATE TABLE {DB}.only_source (id INT PRIMARY KEY)")
    source.execute(f"CREATE TABLE {DB}.wider (id INT PRIMARY KEY)")
    target.execute(f"CREATE TABLE {DB}.wider (id INT PRIMARY KEY, extra INT)")
    run(source, "INSERT INTO only_source VALUES (1)", "INSERT INTO wider VALUES (1)")
    first, second = all_keys(source, schema)
    assert first == {("tbl", DB, "only_source"): True}
    assert second == {("tbl", DB, "wider"): True}


def test_table_mode(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY)", f"CREATE TABLE {DB}.u (id INT PRIMARY KEY)")
    run(source, "BEGIN", "INSERT INTO t VALUES (1)", "INSERT INTO u VALUES (1)", "COMMIT")
    (keys,) = all_keys(source, schema, mode="table")
    assert keys == {("tbl", DB, "t"): True, ("tbl", DB, "u"): True}


# ---- foreign keys ---------------------------------------------------------------

def test_foreign_key_tables_share_one_group_key(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target,
           f"CREATE TABLE {DB}.parent (id INT PRIMARY KEY)",
           f"CREATE TABLE {DB}.other_parent (id INT PRIMARY KEY)",
           f"CREATE TABLE {DB}.child (id INT PRIMARY KEY, p INT, q INT, "
           f"FOREIGN KEY (p) REFERENCES {DB}.parent (id) ON DELETE CASCADE, "
           f"FOREIGN KEY (q) REFERENCES {DB}.other_parent (id))",
           f"CREATE TABLE {DB}.grandchild (id INT PRIMARY KEY, c INT, "
           f"FOREIGN KEY (c) REFERENCES {DB}.child (id) ON DELETE CASCADE)",
           f"CREATE TABLE {DB}.loner (id INT PRIMARY KEY)")
    run(source, "INSERT INTO parent VALUES (1)", "INSERT INTO other_parent VALUES (1)",
        "INSERT INTO child VALUES (1, 1, 1)", "INSERT INTO grandchild VALUES (1, 1)",
        "INSERT INTO loner VALUES (1)", "DELETE FROM parent WHERE id = 1")
    k = all_keys(source, schema)
    group = ("grp", f"{DB}.child")   # the component's smallest member names it
    for keys in k[:4] + k[5:]:
        assert keys == {group: True}
    assert rows(k[4], table="loner") == {(1,)} and not any(key[0] == "grp" for key in k[4])
    for table in ("parent", "other_parent", "child", "grandchild"):
        assert schema.table(DB, table).fk_group == f"{DB}.child"
    assert schema.table(DB, "loner").fk_group is None


# ---- row images -------------------------------------------------------------------

def test_minimal_row_image(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, u INT UNIQUE, v INT)")
    run(source, "INSERT INTO t VALUES (1, 10, 0), (2, 20, 0)")
    minimal = ("SET SESSION binlog_row_image = 'MINIMAL'",)
    run(source, "DELETE FROM t WHERE id = 1", session=minimal)
    run(source, "UPDATE t SET v = 5 WHERE id = 2", session=minimal)
    run(source, "UPDATE t SET u = 21 WHERE id = 2", session=minimal)
    _, delete, update_v, update_u = all_keys(source, schema)
    # The delete image holds the primary key only: the freed u value is unknown.
    assert rows(delete) == {(1,)} and exclusive(delete, ("idx", DB, "t", "u"))
    # Absent from the after image = unchanged: the before image's key names the row.
    assert rows(update_v) == {(2,)} and not exclusive(update_v, ("idx", DB, "t", "PRIMARY"))
    assert exclusive(update_v, ("idx", DB, "t", "u"))
    assert rows(update_u) == {(2,)} and rows(update_u, "u") == {(21,)}
    assert exclusive(update_u, ("idx", DB, "t", "u"))   # the old value 20 is not in the image


def test_compressed_row_events(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, v VARCHAR(300))")
    source.execute("SET GLOBAL log_bin_compress = ON")
    source.execute("SET GLOBAL log_bin_compress_min_len = 10")
    run(source, "INSERT INTO t VALUES (1, REPEAT('x', 300)), (2, 'y')", "UPDATE t SET v = 'z'")
    trxs = row_trxs(source)
    assert any(e.name.endswith("COMPRESSED_V1") for t in trxs for e in t.events)
    insert, update = (transaction_keys(t, schema) for t in trxs)
    assert rows(insert) == rows(update) == {(1,), (2,)}


def test_long_unique_hash_columns(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, body TEXT, UNIQUE KEY b (body))")
    run(source, "INSERT INTO t VALUES (1, 'Hello')")
    (keys,) = all_keys(source, schema)
    assert rows(keys) == {(1,)} and rows(keys, "b") == {(b"hello",)}


def test_system_versioned_table(clean_servers, schema) -> None:
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, body TEXT, UNIQUE KEY b (body)) "
                           "WITH SYSTEM VERSIONING")
    run(source, "INSERT INTO t VALUES (1, 'a')", "UPDATE t SET body = 'b'", "DELETE FROM t")
    k = all_keys(source, schema)
    # Hidden row_start/row_end are walked over; every version of row 1 shares its key (coarser).
    assert [rows(x) for x in k] == [{(1,)}] * 3
    assert rows(k[1], "b") == {(b"a",), (b"b",)}
    assert all(x[("tbl", DB, "t")] is False for x in k)


EVERY_TYPE_COLUMNS = (
    "c_tiny TINYINT", "c_utiny TINYINT UNSIGNED", "c_small SMALLINT", "c_usmall SMALLINT UNSIGNED",
    "c_medium MEDIUMINT", "c_umedium MEDIUMINT UNSIGNED", "c_int INT", "c_uint INT UNSIGNED",
    "c_big BIGINT", "c_ubig BIGINT UNSIGNED", "c_dec DECIMAL(30,10)", "c_dec0 DECIMAL(5,0)",
    "c_float FLOAT", "c_double DOUBLE", "c_bit1 BIT(1)", "c_bit13 BIT(13)", "c_bit64 BIT(64)",
    "c_date DATE", "c_time TIME", "c_time3 TIME(3)", "c_dt DATETIME", "c_dt6 DATETIME(6)",
    "c_ts TIMESTAMP NULL", "c_ts6 TIMESTAMP(6) NULL", "c_year YEAR",
    "c_char CHAR(10)", "c_char_wide CHAR(100) CHARACTER SET utf8mb4", "c_varchar VARCHAR(20)",
    "c_varchar300 VARCHAR(300)", "c_varchar_latin VARCHAR(255) CHARACTER SET latin1",
    "c_binary BINARY(8)", "c_varbinary VARBINARY(20)", "c_tinytext TINYTEXT", "c_text TEXT",
    "c_tinyblob TINYBLOB", "c_blob BLOB", "c_mediumblob MEDIUMBLOB", "c_longtext LONGTEXT",
    "c_longblob LONGBLOB", "c_json JSON", "c_enum ENUM('a','b','c')",
    "c_enum_big ENUM(" + ",".join(f"'v{i}'" for i in range(300)) + ")",
    "c_set SET('x','y','z')", "c_set_big SET(" + ",".join(f"'m{i}'" for i in range(20)) + ")",
    "c_geom GEOMETRY", "c_point POINT", "c_ucs2 VARCHAR(10) CHARACTER SET ucs2",
)
EVERY_TYPE_VALUES = (
    "-128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, "
    "18446744073709551615, -12345678901234567890.0123456789, 99999, -1.5e10, 2.2250738585072014e-308, "
    "b'1', b'1010101010101', b'1111111111111111111111111111111111111111111111111111111111111111', "
    "'2024-02-29', '-838:59:59', '838:59:58.999', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', "
    "'1970-01-01 00:00:01', '2038-01-19 03:14:07.999999', 2155, "
    "'chars', REPEAT('ü', 100), 'varchar', REPEAT('é', 300), REPEAT('l', 255), "
    "X'0001020300', X'00FF00', REPEAT('t', 255), REPEAT('T', 70000), "
    "REPEAT('b', 255), REPEAT('B', 65535), REPEAT('m', 70000), REPEAT('L', 100000), REPEAT('Z', 3), "
    "'{\"a\": [1, 2, {\"b\": null}]}', 'c', 'v299', 'x,z', 'm0,m7,m19', "
    "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 0))'), POINT(1, 2), 'ucs2'"
)


def test_every_column_type_is_walked(clean_servers, schema) -> None:
    source, target = clean_servers
    columns = ", ".join(EVERY_TYPE_COLUMNS)
    create(source, target, f"CREATE TABLE {DB}.t ({columns}, k INT NOT NULL PRIMARY KEY, u VARCHAR(20) UNIQUE)")
    nulls = ", ".join(["NULL"] * len(EVERY_TYPE_COLUMNS))
    empties = ("0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'0', b'0', b'0', '0000-00-00', '00:00:00', '00:00:00', "
               "'0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0, "
               "'', '', '', '', '', '', '', '', '', '', '', '', '', '', '[]', '', 'v0', '', '', "
               "POINT(0, 0), POINT(0, 0), ''")
    run(source, f"INSERT INTO t VALUES ({EVERY_TYPE_VALUES}, 1, 'row-one')",
        f"INSERT INTO t VALUES ({nulls}, 2, 'row-two')",
        f"INSERT INTO t VALUES ({empties}, 3, 'row-three')",
        "UPDATE t SET c_int = 7",
        "DELETE FROM t",
        session=("SET SESSION sql_mode = ''",))
    k = all_keys(source, schema)
    assert [rows(x) for x in k] == [{(1,)}, {(2,)}, {(3,)}, {(1,), (2,), (3,)}, {(1,), (2,), (3,)}]
    assert rows(k[0], "u") == {(b"row-one",)} and rows(k[1], "u") == {(b"row-two",)}
    assert rows(k[3], "u") == rows(k[4], "u") == {(b"row-one",), (b"row-two",), (b"row-three",)}
    assert all(not exclusive(x, ("tbl", DB, "t")) for x in k)


def test_mariadb_specific_types_are_walked(clean_servers, schema) -> None:
    source, target = clean_servers
    try:
        create(source, target, f"CREATE TABLE {DB}.t (c_uuid UUID, c_inet6 INET6, c_inet4 INET4, "
                               "c_vc VARCHAR(300) COMPRESSED, c_bc BLOB COMPRESSED, "
                               "c_gen INT AS (k * 2) VIRTUAL, c_inv INT INVISIBLE DEFAULT 7, "
                               "k INT PRIMARY KEY, g UUID UNIQUE)")
    except pymysql.err.MySQLError as exc:
        pytest.skip(f"server lacks a MariaDB type: {exc}")
    run(source, "INSERT INTO t (c_uuid, c_inet6, c_inet4, c_vc, c_bc, k, g) VALUES "
                "(UUID(), '2001:db8::1', '10.0.0.1', REPEAT('v', 300), REPEAT('b', 1000), 1, "
                "'00000000-0000-0000-0000-000000000001')")
    (keys,) = all_keys(source, schema)
    assert rows(keys) == {(1,)}
    ((uuid,),) = rows(keys, "g")
    assert len(uuid) <= 16 and uuid.endswith(b"\x01")


def test_mariadb_old_fractional_temporal_format(clean_servers, schema) -> None:
    source, target = clean_servers
    source.execute("SET GLOBAL mysql56_temporal_format = OFF")   # how tables from MariaDB < 10.1 look
    source.execute(f"CREATE DATABASE {DB}")
    ddl = (f"CREATE TABLE {DB}.t (d1 DATETIME(1), d6 DATETIME(6), t2 TIME(2), t5 TIME(5), "
           "s3 TIMESTAMP(3) NULL, s6 TIMESTAMP(6) NULL, d0 DATETIME, k INT PRIMARY KEY)")
    source.execute(ddl)
    target.execute(f"CREATE DATABASE {DB}")
    target.execute(ddl)   # the restored copy uses today's format: only the binlog has the old one
    run(source, "INSERT INTO t VALUES (NOW(6), NOW(6), '-1:02:03.45', '838:59:59.99999', NOW(6), NOW(6), NOW(), 42)")
    (keys,) = all_keys(source, schema)
    assert rows(keys) == {(42,)}


# ---- speed ---------------------------------------------------------------------------

def test_benchmark_100k_row_transaction(clean_servers, schema, monkeypatch) -> None:
    import binreplay.schedule.keys

    monkeypatch.setattr(binreplay.schedule.keys, "BULK_ROWS_EVENTS", 10 ** 9)  # measure the per-row walker itself
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, name VARCHAR(50), qty INT, "
                           "ts DATETIME, note VARCHAR(20) UNIQUE)")
    run(source, "INSERT INTO t SELECT seq, CONCAT('name', seq), seq % 7, NOW(), CONCAT('N', seq) "
                "FROM seq_1_to_100000",
        "UPDATE t SET qty = qty + 1")
    insert, update = row_trxs(source)
    for label, trx, images in (("insert", insert, 100_000), ("update", update, 200_000)):
        transaction_keys(trx, schema)  # plans and walkers compiled once per table
        started = time.perf_counter()
        keys = transaction_keys(trx, schema)
        elapsed = time.perf_counter() - started
        assert len(rows(keys)) == 100_000 and len(rows(keys, "note")) == 100_000
        rate = 100_000 / elapsed
        print(f"\nkeys of a 100k-row {label} ({images} row images): {elapsed:.3f}s = {rate:,.0f} rows/s")
        assert rate > 50_000   # the target is well above 100k; leave room for a loaded machine


def test_bulk_transaction_takes_the_table_key(clean_servers, schema) -> None:
    """Past BULK_ROWS_EVENTS row events of one table, the table's exclusive key replaces row keys."""
    source, target = clean_servers
    create(source, target, f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, pad VARCHAR(200))",
           f"CREATE TABLE {DB}.s (id INT PRIMARY KEY)")
    run(source, "INSERT INTO t SELECT seq, REPEAT('x', 200) FROM seq_1_to_20000", "INSERT INTO s VALUES (1)")
    bulk, small = row_trxs(source)
    keys = transaction_keys(bulk, schema)
    assert keys.get(("tbl", DB, "t")) is True
    assert len(rows(keys)) < 20_000
    small_keys = transaction_keys(small, schema)
    assert small_keys.get(("tbl", DB, "s")) is False and len(rows(small_keys, table="s")) == 1
