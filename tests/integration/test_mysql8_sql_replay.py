"""MySQL 8 binlogs applied with --apply sql to a real MariaDB target (compressed transactions, partial JSON,
enum/set)."""

from __future__ import annotations

from binreplay.source.reader import BinlogReader

from data import MYSQL_BINLOGS as FIXTURES
from helpers import run_binreplay

JSON_FILE = "mc-8.0.22-json-partial-update.000001"


DOCS = ['{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}',
        '{"age": 32, "data": "yyyyyyyyyy", "name": "Sue"}',
        '{"age": 40, "data": "zzzzzzzzzz", "name": "Pete"}']


def transactions(name: str):
    return list(BinlogReader([FIXTURES / name]).transactions())


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
    assert warnings == [f"binreplay: WARNING: run 1 (failed: 1 file(s) from {ENUM_FILE}, "
                        f"start_position={create.start_pos}) abandoned; it had applied nothing",
                        "binreplay: WARNING: collation id 255 (utf8mb4_0900_ai_ci) is unknown to the target; "
                        "using its default utf8mb4 collation utf8mb4_general_ci instead"], result.stderr
    assert target.execute("SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'fx'") == [
        ("utf8mb4_general_ci",)]
    assert target.execute("SELECT f1, f2, f3, f4 FROM fx.t") == [("field1", "field_2", "variant2", "two,four")]


def test_mysql8_collation_names_in_statement_text(clean_servers) -> None:
    """Only a COLLATE clause naming a collation the target lacks is changed; the same name in a string
    literal or a comment stays, a name the target knows stays, a statement without one is the same bytes.
    The translated statement runs on the MariaDB target."""
    from binreplay.apply.cross_flavor import ContextTranslation
    from binreplay.server.catalog import collations, default_collations

    _, target = clean_servers
    with target.connect() as conn:
        translation = ContextTranslation("mariadb", collations(conn), default_collations(conn))
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
