"""--apply sql's value rendering on real MySQL 8 row images: no server needed."""

from __future__ import annotations

from data import MYSQL_BINLOGS as FIXTURES


def _decoded_rows(name: str) -> list[tuple[str, tuple]]:
    """Every row image of a fixture, rendered as the SQL literals --apply sql would send to MySQL."""
    from binreplay.apply.sql_values import ColumnType, renderer
    from binreplay.binlog import constants as C
    from binreplay.binlog import rows as R
    from binreplay.binlog.events import parse_format_description
    from binreplay.binlog.file import BinlogFile
    from binreplay.binlog.header import event_body, post_header_len
    from binreplay.binlog.table_map import parse_table_map
    from binreplay.binlog.table_meta import parse_table_meta

    out, fde, maps = [], None, {}
    for ev in BinlogFile(FIXTURES / name).events():
        if ev.type_code == C.FORMAT_DESCRIPTION_EVENT:
            fde = parse_format_description(ev.raw)
            continue
        body, phl = event_body(ev, fde), post_header_len(fde, ev.type_code)
        if ev.type_code == C.TABLE_MAP_EVENT:
            tm = parse_table_map(body, phl)
            meta = parse_table_meta(tm, fde.flavor)
            render = [renderer(ColumnType(t, m, bool(meta.unsigned and meta.unsigned[i]), "utf8mb4"), "mysql")
                      for i, (t, m) in enumerate(zip(tm.types, tm.metadata))]
            maps[tm.table_id] = (tm.table, R.RowWalker(tm), render)
        elif ev.type_code in C.ROWS_EVENTS and ev.type_code != C.PARTIAL_UPDATE_ROWS_EVENT:
            rows = R.parse_rows_event(ev.type_code, body, phl)
            table, walker, render = maps[rows.table_id]
            for image in walker.images(rows, tuple(range(rows.column_count))):
                out.append((table, tuple(None if v is None else render[i](v) for i, v in enumerate(image))))
    return out


def _json_text(literal: str) -> str:
    hex_text = literal.split("X'", 1)[1].split("'", 1)[0]
    return bytes.fromhex(hex_text).decode()


def test_mysql_binary_json_and_negative_time2_decode_exactly() -> None:
    assert _decoded_rows("mc-8.0.40-time2-negative.000001") == [("t", ("'-507:48:27'",))]
    docs = [_json_text(r[1][1]) for r in _decoded_rows("mc-8.0.22-json-partial-update.000001")[:3]]
    assert docs == ['{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}',
                    '{"age": 32, "data": "yyyyyyyyyy", "name": "Sue"}',
                    '{"age": 40, "data": "zzzzzzzzzz", "name": "Pete"}']
    opaque = [_json_text(r[1][0]) for r in _decoded_rows("mc-9.0.1-json-opaque.binlog")]
    assert opaque[:6] == ['{"a": "base64:type15:VQ=="}', '{"b": "2012-03-18"}',
                          '{"c": "2012-03-18 11:30:45.000000"}', '{"c": "87:31:46.654321"}',
                          '{"d": 123.456}', '{"e": 9.00}']


def test_values_mysql_replication_gets_wrong() -> None:
    """mysql-replication decodes YEAR 0000 as 1900 and a zero TIMESTAMP as 1970-01-01 (see
    shared notes); our renderer keeps both (the round trip above checks them on a server too)."""
    from binreplay.apply.sql_values import ColumnType, renderer
    from binreplay.binlog import column_types as T

    assert renderer(ColumnType(T.T_YEAR, 0))(b"\x00") == "0"
    assert renderer(ColumnType(T.T_YEAR, 0))(b"\xff") == "2155"
    assert renderer(ColumnType(T.T_TIMESTAMP2, 0))(b"\x00\x00\x00\x00") == "'0000-00-00 00:00:00'"
    assert renderer(ColumnType(T.T_TIMESTAMP2, 6))(b"\x00\x00\x00\x01\x00\x00\x01") == "'1970-01-01 00:00:01.000001'"
    assert renderer(ColumnType(T.T_LONGLONG, 0, unsigned=True))(b"\xff" * 8) == "18446744073709551615"


# --- large values: not doubled, statements sized to the target's max_allowed_packet ---------------

def test_large_values_are_quoted_not_hex() -> None:
    """From QUOTED_FROM on a value's bytes go as they are, escaped (a 9 MiB value made an 18 MiB hex
    statement); shorter ones stay hex. Any bytes survive the statement's surrogateescape encoding."""
    import os

    from binreplay.apply.sql_values import QUOTED_FROM, quoted, string_literal

    assert string_literal("latin1", b"\xe9'") == "_latin1 X'e927'"
    assert string_literal("binary", b"") == "''"
    tricky = b"a'\\\0\n\r\x1a\xff\xe0'"
    sql = quoted("binary", tricky).encode("utf-8", "surrogateescape")
    assert sql == b"_binary'a\\'\\\\\\0\\n\\r\\Z\xff\xe0\\''"
    for charset, raw in (("utf8mb4", "ü😀 text ".encode() * (9 << 17)), ("binary", os.urandom(9 << 20))):
        literal = string_literal(charset, raw).encode("utf-8", "surrogateescape")
        assert literal.startswith(f"_{charset}'".encode()) and len(literal) < 1.05 * len(raw)
    assert string_literal("utf8mb4", b"x" * QUOTED_FROM) == "_utf8mb4'" + "x" * QUOTED_FROM + "'"


def _row_part(sql: bytes, table: str = "`d`.`t`"):
    from binreplay.apply.packets import Part
    from binreplay.apply.row_checks import RowCheck

    return Part(sql, "sql", check=RowCheck("INSERT", table, "b.000001:4", 1))


def test_packets_stay_under_the_targets_max_allowed_packet() -> None:
    from binreplay.apply.packets import PACKET_MARGIN, Part, fit_packets, pack

    limit = 64 << 10
    parts = [Part(b"SET @@session.unique_checks=1", "set")] + [_row_part(b"x" * (20 << 10)) for _ in range(7)]
    fitted = fit_packets(parts, limit)
    assert [p.kind for p in fitted].count("break") >= 2
    steps = pack(fitted, prefix=[b"BEGIN"], suffix=[b"COMMIT"])
    assert len(steps) >= 3 and all(len(s.sql) <= limit - PACKET_MARGIN for s in steps)
    assert sum(len(s.checks) for s in steps) == 7
    # Without a smaller limit, a statement longer than a shared packet goes in one of its own.
    big = [_row_part(b"a" * 100), _row_part(b"b" * (3 << 20)), _row_part(b"c" * 100)]
    assert [len(s.checks) for s in pack(fit_packets(big, 16 << 20))] == [1, 1, 1]


def test_a_statement_no_packet_takes_is_refused_naming_its_row() -> None:
    import pytest

    from binreplay.apply.packets import fit_packets
    from binreplay.errors import TargetError

    with pytest.raises(TargetError) as refused:
        fit_packets([_row_part(b"x" * (5 << 20), "`shop`.`images`")], 4 << 20)
    message = str(refused.value)
    assert "INSERT of `shop`.`images` at b.000001:4" in message and "max_allowed_packet (4194304 bytes)" in message


def test_row_batches_are_cut_to_the_packet_budget() -> None:
    from binreplay.apply.sql_statements import MAX_STATEMENT_BYTES, Batch, PlanColumn, TablePlan, batch_budget
    from binreplay.binlog import rows as R

    assert batch_budget(16 << 20) == MAX_STATEMENT_BYTES
    assert batch_budget(1 << 20) < (1 << 20) // 4
    column = PlanColumn(0, "`v`", lambda raw: raw.decode(), lambda lit: lit)
    plan = TablePlan("`d`.`t`", None, (column,), (column,))  # type: ignore[arg-type]  # no walker needed
    batch = Batch(plan, R.WRITE, 1, 0, "b.000001:4", budget=100)
    first = batch.row((b"a" * 60,))
    assert batch.fits(first)
    batch.add((b"a" * 60,), first)
    second = batch.row((b"b" * 60,))
    assert not batch.fits(second)                  # cut before the row that would overflow
    (statement,) = batch.finish()
    assert statement.check.expected == 1 and statement.sql.startswith("INSERT INTO `d`.`t` (`v`) VALUES (")


def test_rows_apply_with_the_check_constraint_flag_of_their_event() -> None:
    from binreplay.apply.sql_rows import NO_CHECK_CONSTRAINT_CHECKS_F, NO_FOREIGN_KEY_CHECKS_F, session_settings

    def checks(flags: int, flavor: str) -> str:
        return dict((k, sql) for k, _v, sql in session_settings(flags, flavor))["flags2"]

    assert checks(0, "mariadb").endswith("@@session.check_constraint_checks=1")
    assert checks(NO_CHECK_CONSTRAINT_CHECKS_F | NO_FOREIGN_KEY_CHECKS_F, "mariadb") == (
        "SET @@session.foreign_key_checks=0, @@session.unique_checks=1, @@session.check_constraint_checks=0")
    assert "check_constraint" not in checks(NO_CHECK_CONSTRAINT_CHECKS_F, "mysql")   # MySQL has no such variable
