"""What a target session runs for source transactions, one encoder per apply mode.

Both modes walk a transaction the same way (`Encoder.body`): runs of row events (TABLE_MAP and
ROWS) go to the mode's `rows_parts`, source statements run after the session context they need
(context.py), and BEGIN/COMMIT are the applier's. The modes differ in what rows become:

    --apply binlog  BinlogEncoder: the exact bytes, as `BINLOG '<base64>'` statements, after the
                    file's FORMAT_DESCRIPTION (sent once per session). A batch of row-only
                    transactions is one statement; on MariaDB its row events are merged into one
                    row "statement" (every TABLE_MAP once, end-of-statement flag only on the last
                    rows event), so the server opens and locks the tables once per batch instead of
                    once per source statement (measured: a quarter to a third less server CPU).
    --apply sql     SqlEncoder: INSERT / UPDATE / DELETE with exact literals (sql_rows.py), each
                    followed by its row-count check (row_checks.py), in packets the target's
                    max_allowed_packet takes (packets.fit_packets).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from binreplay.apply.context import SessionContext, Verbatim
from binreplay.apply.packets import Part, SessionState, binlog_statement, fit_packets
from binreplay.apply.row_checks import GUARD, RESET
from binreplay.binlog import constants as C
from binreplay.binlog.boundaries import is_transaction_control
from binreplay.binlog.header import post_header_len, table_id_len
from binreplay.hotpath import compiled
from binreplay.model import Event, FormatDescription, QueryInfo, Transaction, TrxKind

# Keep each BINLOG statement well under the target's max_allowed_packet.
DEFAULT_BINLOG_CHUNK = 4 << 20
_ROWS_OR_MAP = C.ROWS_EVENTS | {C.TABLE_MAP_EVENT}
# Row events that may be merged into one statement (MariaDB's; MySQL's v2 rows events carry
# extra data and are never sent to a MariaDB server anyway).
_MERGEABLE = frozenset({C.WRITE_ROWS_EVENT_V1, C.UPDATE_ROWS_EVENT_V1, C.DELETE_ROWS_EVENT_V1,
                        C.WRITE_ROWS_COMPRESSED_EVENT_V1, C.UPDATE_ROWS_COMPRESSED_EVENT_V1,
                        C.DELETE_ROWS_COMPRESSED_EVENT_V1, C.TABLE_MAP_EVENT})
# The compiled merge (binreplay/_hotpath.c) by type code: 0 not sent, 1 rows, 2 TABLE_MAP, 3 rows
# that cannot be merged.
_MERGE_KINDS = bytes(2 if t == C.TABLE_MAP_EVENT else 1 if t in _MERGEABLE else 3 if t in _ROWS_OR_MAP else 0
                     for t in range(256))


class Encoder:
    """The statements of source transactions for one session; subclasses say what rows become."""

    row_checks = False          # statements carry row-count checks (RESET before, GUARD before COMMIT)
    found_rows = False          # the connection must report matched rows, not changed rows

    def __init__(self, state: SessionState, context: SessionContext) -> None:
        self.state = state
        self.context = context

    def pieces(self, trxs: list[Transaction]) -> list[list[Transaction]]:
        """What is built at once (all of it, unless building needs earlier pieces applied first)."""
        return [trxs]

    def body(self, trxs: list[Transaction], prepared: bytes | None = None) -> list[Part]:
        """Everything between BEGIN and COMMIT of these transactions (for DDL: the statement);
        `prepared`: what the mode built ahead for them, if anything (BinlogEncoder)."""
        return [part for trx in trxs for part in self.transaction_parts(trx)]

    def transaction_parts(self, trx: Transaction) -> list[Part]:
        parts: list[Part] = []
        run: list[Event] = []          # the row events since the last statement
        flavor = trx.fde.flavor
        for ev in trx.events:
            t = ev.type_code
            if t in _ROWS_OR_MAP:
                run.append(ev)
            elif t in (C.QUERY_EVENT, C.QUERY_COMPRESSED_EVENT):
                q = ev.info
                assert isinstance(q, QueryInfo)
                if is_transaction_control(q.sql):
                    continue  # the applier opens and ends the target transaction itself
                parts += self._flush(run, trx)
                self.statement_replayed()
                parts += [Part(sql, "set") for sql in self.context.statement_context(ev, q, flavor)]
                parts.append(Part(self.context.dialect.statement(q.sql), "statement", q.error_code))
            elif t in C.STATEMENT_CONTEXT_EVENTS:
                parts += self.context.event_parts(ev, flavor)
        parts += self._flush(run, trx)
        return parts

    def _flush(self, run: list[Event], trx: Transaction) -> list[Part]:
        if not run:
            return []
        parts = self.rows_parts(list(run), trx)
        run.clear()
        return parts

    def rows_parts(self, events: list[Event], trx: Transaction) -> list[Part]:
        raise NotImplementedError

    def statement_replayed(self) -> None:
        """A source statement (maybe DDL) is about to run."""

    def check_reset(self) -> list[bytes]:
        return [RESET] if self.row_checks else []

    def check_guard(self) -> list[bytes]:
        """Before COMMIT: fail unless every row statement matched its rows (row_checks.py)."""
        return [GUARD] if self.row_checks else []


class BinlogEncoder(Encoder):
    """Row events as BINLOG statements of their exact bytes."""

    def __init__(self, state: SessionState, context: SessionContext, *, merge: bool,
                 chunk_bytes: int = DEFAULT_BINLOG_CHUNK) -> None:
        super().__init__(state, context)
        self.merge = merge              # the target applies merged row events (MariaDB, measured)
        self.chunk_bytes = chunk_bytes

    def fde_parts(self, fde: FormatDescription) -> list[Part]:
        if self.state.fde_raw == fde.raw:
            return []
        self.state.fde_raw = fde.raw
        # An FDE-only BINLOG statement does not end a packet (it carries no rows).
        return [Part(binlog_statement([fde.raw]), "set")]

    def body(self, trxs: list[Transaction], prepared: bytes | None = None) -> list[Part]:
        """`prepared`: `rows_statement` of `trxs`, built ahead by the coordinator."""
        parts = self.fde_parts(trxs[0].fde)
        statement = prepared if prepared is not None else rows_statement(trxs, self.merge, self.chunk_bytes)
        if statement is None:
            return parts + [p for trx in trxs for p in self.transaction_parts(trx)]
        return parts + [Part(statement, "binlog")] if statement else parts

    def rows_parts(self, events: list[Event], trx: Transaction) -> list[Part]:
        """One run of row events as BINLOG statements of at most about `chunk_bytes` each."""
        parts: list[Part] = []
        chunk: list[bytes] = []
        table_maps: list[bytes] = []     # of the source statement in progress
        size = 0
        for ev in events:
            chunk.append(ev.raw)
            size += len(ev.raw)
            if ev.type_code == C.TABLE_MAP_EVENT:
                table_maps.append(ev.raw)
                continue
            if _statement_end(ev.raw, trx.fde, ev.type_code):
                table_maps = []
                if size >= self.chunk_bytes:
                    parts.append(Part(binlog_statement(chunk), "binlog"))
                    chunk, size = [], 0
            elif size >= self.chunk_bytes:
                # Split a large statement: the server forgets table maps at the end of each BINLOG
                # statement, so the next chunk must carry them again (without them its rows would be
                # silently ignored).
                parts.append(Part(binlog_statement(chunk), "binlog"))
                chunk = list(table_maps)
                size = sum(map(len, chunk))
        if chunk:
            parts.append(Part(binlog_statement(chunk), "binlog"))
        return parts


def rows_statement(trxs: list[Transaction], merge: bool, chunk_bytes: int = DEFAULT_BINLOG_CHUNK) -> bytes | None:
    """The hot path: the one BINLOG statement of a run of row-only transactions, built from slices
    of their bytes, no Event objects (b"" when they change no rows). None when they are not such a
    run (statements, or more than `chunk_bytes`): each transaction is then encoded on its own.
    Depends on nothing of a session, so the coordinator can build it while a worker waits."""
    if sum(t.size for t in trxs) > chunk_bytes or any(t.kind not in (TrxKind.ROWS, TrxKind.EMPTY) for t in trxs):
        return None
    fde = trxs[0].fde
    if merge and fde.flavor == "mariadb" and compiled is not None:
        # The same statement as below, built in one pass (None: the Python path decides).
        statement = compiled.merged_rows_statement(trxs, _MERGE_KINDS, _table_id_len(fde), fde.crc_len)
        if statement is not None:
            return statement
    events = _row_slices(trxs)
    if not events:
        return b""
    blob = _merged(events, fde) if merge and fde.flavor == "mariadb" else None
    return binlog_statement([blob] if blob is not None else [e for _t, e in events])


def _row_slices(trxs: list[Transaction]) -> list[tuple[int, memoryview]]:
    out: list[tuple[int, memoryview]] = []
    for trx in trxs:
        view = memoryview(trx.data)
        base = trx.base
        out += [(t, view[s - base:e - base]) for t, s, e in trx.spans if t in _ROWS_OR_MAP]
    return out


def _merged(events: list[tuple[int, memoryview]], fde: FormatDescription) -> bytes | None:
    """Row events of consecutive transactions as one row statement: each TABLE_MAP once, in front,
    the rows events in order with the end-of-statement flag on the last one only. None when the
    events do not allow it (a table id mapped two ways, a rows event of another kind)."""
    id_len, crc_len = _table_id_len(fde), fde.crc_len   # (the checksum differs with the header)
    maps: dict[bytes, memoryview] = {}       # table id bytes -> its TABLE_MAP
    rows: list[memoryview] = []
    for t, raw in events:
        if t not in _MERGEABLE:
            return None
        if t == C.TABLE_MAP_EVENT:
            table_id = bytes(raw[C.HEADER_LEN:C.HEADER_LEN + id_len])
            seen = maps.get(table_id)
            if seen is None:
                maps[table_id] = raw
            elif seen[C.HEADER_LEN:len(seen) - crc_len] != raw[C.HEADER_LEN:len(raw) - crc_len]:
                return None      # the same id for another table or layout
        else:
            rows.append(raw)
    if not rows:
        return None
    # The flags word follows the table id; its low byte holds STMT_END_F. MariaDB does not check
    # the CRC32 of BINLOG statement events, so the changed events keep theirs (measured on 10.11).
    out = bytearray(b"".join([*maps.values(), *rows]))
    at = sum(len(m) for m in maps.values())
    flag = C.HEADER_LEN + id_len
    for raw in rows:
        out[at + flag] &= ~C.STMT_END_F & 0xFF
        at += len(raw)
    out[at - len(rows[-1]) + flag] |= C.STMT_END_F
    return bytes(out)


def _table_id_len(fde: FormatDescription) -> int:
    return table_id_len(post_header_len(fde, C.TABLE_MAP_EVENT))


def _statement_end(raw: bytes, fde: FormatDescription, type_code: int) -> bool:
    id_len = table_id_len(post_header_len(fde, type_code))
    return bool(struct.unpack_from("<H", raw, C.HEADER_LEN + id_len)[0] & C.STMT_END_F)


class SqlEncoder(Encoder):
    """--apply sql: row events as plain SQL statements with row-count checks."""

    row_checks = True
    found_rows = True

    def __init__(self, state: SessionState, context: SessionContext, translator: object,
                 pieces: Callable[[Transaction], list[Transaction]], max_packet: int) -> None:
        super().__init__(state, context)
        self.translator = translator          # sql_rows.SqlTranslator of this session
        self._pieces = pieces
        self.max_packet = max_packet          # the target's max_allowed_packet

    def pieces(self, trxs: list[Transaction]) -> list[list[Transaction]]:
        """In a transaction with statements, rows following a statement are translated after it ran
        (CREATE TABLE ... SELECT: the new table's definition is needed)."""
        if not any(t.kind in (TrxKind.STATEMENT, TrxKind.MIXED) for t in trxs):
            return [trxs]
        return [[piece] for trx in trxs for piece in self._pieces(trx)]

    def statement_replayed(self) -> None:
        self.translator.statement_replayed()  # type: ignore[attr-defined]

    def body(self, trxs: list[Transaction], prepared: bytes | None = None) -> list[Part]:
        return fit_packets(super().body(trxs, prepared), self.max_packet)

    def rows_parts(self, events: list[Event], trx: Transaction) -> list[Part]:
        from binreplay.apply.sql_rows import session_settings

        out: list[Part] = []
        values = self.state.values
        for row in self.translator.translate(events, trx.fde, trx.file):  # type: ignore[attr-defined]
            for key, value, setting in session_settings(row.flags, self.context.flavor):
                if values.get(key, object()) != value:
                    values[key] = value
                    out.append(Part(setting.encode(), "set"))
            out.append(Part(row.sql.encode("utf-8", "surrogateescape"), "sql", check=row.check))
        return out


def merges_rows(target_flavor: str) -> bool:
    """Whether row events of consecutive transactions go to the target merged (see _merged): MariaDB."""
    return target_flavor == "mariadb"


def statement_builder(apply_mode: str, target_flavor: str) -> Callable[[list[Transaction]], bytes | None] | None:
    """What builds a batch's `rows_statement` ahead of its worker, in the modes that send one."""
    if apply_mode != "binlog":
        return None
    merge = merges_rows(target_flavor)
    return lambda trxs: rows_statement(trxs, merge)


def encoder_factory(apply_mode: str, target_flavor: str, collations: dict[int, tuple[str, str]],
                    sql_shared: object | None) -> Callable[[object], Encoder]:
    """A function building each applier's encoder (it may need the applier's own connection)."""
    def binlog(_applier: object) -> Encoder:
        state = _applier.state  # type: ignore[attr-defined]
        context = SessionContext(state, collations, target_flavor, Verbatim())
        return BinlogEncoder(state, context, merge=merges_rows(target_flavor))

    def sql(applier: object) -> Encoder:
        from binreplay.apply.sql_rows import SqlTranslator, TranslatedDialect, translation_pieces

        state = applier.state  # type: ignore[attr-defined]
        translator = SqlTranslator(sql_shared, lambda: applier.conn)  # type: ignore[arg-type, attr-defined]
        context = SessionContext(state, collations, target_flavor, TranslatedDialect(translator))
        return SqlEncoder(state, context, translator, translation_pieces, translator.shared.max_packet)

    return sql if apply_mode == "sql" else binlog
