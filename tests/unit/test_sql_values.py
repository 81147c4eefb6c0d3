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
