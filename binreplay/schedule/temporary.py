"""Temporary tables of the source's sessions: the spans of the binlog that need one target session.

In a STATEMENT or MIXED binlog, `CREATE TEMPORARY TABLE` and the statements that use the table are
logged as they ran; the table lives only in the session that replays them. If the resume point fell
between the CREATE and the last statement that needs the table, a rerun (a new session) would meet
"table doesn't exist" forever; so would a worker whose connection was lost. The server has the same
rule for its replicas (never stop while `Slave_open_temp_tables` > 0).

`TemporaryTables` follows, in source order, the temporary tables each source session (server id,
pseudo-thread id of its QUERY events) holds open: a *span* lasts from a transaction that opens the
first one to the transaction after which none is open. The batcher applies a span as one target
transaction (schedule/batches.py): `CREATE`/`DROP TEMPORARY TABLE` do not commit implicitly, so
the span commits with its one progress row or not at all, and a rerun or a lost session starts it
again from its CREATE. A member that would commit the span's transaction early (other DDL, a
transaction the source rolled back, a CREATE ... SELECT) cannot be part of it: `Follow.fits` says so.
A restart of the source (its first binlog after it started: the FORMAT_DESCRIPTION has a creation time)
closes every temporary table, as on its replicas: a crash logs no DROP, and thread ids start again.

Only transactions with statements are looked at (rows-only ones cannot open or drop a temporary
table), and only statements that begin with CREATE, DROP, ALTER or RENAME are parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from binreplay.binlog import constants as C
from binreplay.model import BinlogPosition, QueryInfo, Transaction, TrxKind

_NAME = rb"(?:`(?:[^`]|``)+`|[\w$]+)"
_QUALIFIED = rb"(%s)(?:\s*\.\s*(%s))?" % (_NAME, _NAME)
_COMMENT = re.compile(rb"/\*(?![!M]).*?\*/|--[ \t][^\n]*|#[^\n]*", re.S)   # not /*! */ or /*M! */
_VERSIONED = re.compile(rb"/\*[!M]!?\d*\s*(.*?)\*/", re.S)                 # /*!40005 TEMPORARY */ -> TEMPORARY
_CREATE = re.compile(rb"CREATE\s+(?:OR\s+REPLACE\s+)?TEMPORARY\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + _QUALIFIED,
                     re.I)
_DROP = re.compile(rb"DROP\s+(TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?(.*)", re.I | re.S)
_RENAME = re.compile(rb"(?:RENAME\s+TABLES?\s+|ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+)" + _QUALIFIED
                     + rb"\s+(?:TO\s+|RENAME\s+(?:(?:TO|AS)\s+)?)" + _QUALIFIED, re.I)
_LIST_ITEM = re.compile(rb"\s*" + _QUALIFIED + rb"\s*(,?)")
_FIRST_WORDS = (b"CREATE", b"DROP", b"ALTER", b"RENAME")

Table = tuple[str, str]            # (schema, name) as the statements spell them
Session = tuple[int, int]          # (server id, pseudo-thread id)


@dataclass(frozen=True)
class Follow:
    """What one transaction means for the open span: `member`, it needs the span's session (a span was
    open before it, or it opens one); `open_after`, temporary tables are still open after it; `fits`,
    it can be part of the span's one target transaction (else `why` says what commits early)."""

    member: bool
    open_after: bool
    fits: bool = True
    why: str = ""
    # The open span ended before it: its file was written after the source's server (re)started, which
    # closed every temporary table (a crash logs no DROP for them; pseudo-thread ids start again).
    ended_before: bool = False


_OUTSIDE = Follow(False, False)


@dataclass
class TemporaryTables:
    """The temporary tables open in each source session, from the statements applied so far."""

    open: dict[Session, set[Table]] = field(default_factory=dict)
    opened_at: BinlogPosition | None = None      # where the open span began
    _file_index: int | None = None               # the file of the last transaction followed
    starts: int = 0                              # files followed that the source wrote first after it started

    @property
    def any_open(self) -> bool:
        return bool(self.open)

    def names(self) -> str:
        """The open tables, for messages."""
        tables = sorted(f"`{db}`.`{name}`" for tables in self.open.values() for db, name in tables)
        return ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")

    def pass_by(self, trx: Transaction) -> bool:
        """A transaction the run does not apply, in source order: True when its file ended the open span
        (the source restarted before it)."""
        if trx.file_index == self._file_index:
            return False
        self._file_index = trx.file_index
        if not trx.fde.create_timestamp:
            return False
        # The first binlog a server writes after it started has a FORMAT_DESCRIPTION with a creation
        # time (0 in files opened by a rotation): the server (re)started before this file, and its
        # sessions' temporary tables went with it. A replica closes its temporary tables at that event;
        # so does this follow (and the appliers' sessions: Batch.source_starts).
        self.starts += 1
        ended = bool(self.open)
        self.open.clear()
        self.opened_at = None
        return ended

    def follow(self, trx: Transaction) -> Follow:
        """Take the next transaction the run applies, in source order."""
        ended_before = self.pass_by(trx)
        was_open = bool(self.open)
        temporary_only = True          # its statements are all CREATE/DROP of temporary tables
        if trx.kind not in (TrxKind.ROWS, TrxKind.EMPTY):
            for ev in trx.events:
                if ev.type_code in (C.QUERY_EVENT, C.QUERY_COMPRESSED_EVENT) and isinstance(ev.info, QueryInfo):
                    temporary_only &= self._statement(ev.server_id, ev.info)
        if not was_open and self.open:
            self.opened_at = trx.start
        member = was_open or bool(self.open)
        if not member:
            return Follow(False, False, ended_before=True) if ended_before else _OUTSIDE
        why = ""
        if trx.kind is TrxKind.DDL and not temporary_only:
            why = "a statement that commits implicitly"
        elif trx.non_transactional:
            why = "a transaction the source rolled back"
        elif trx.implicit_commit:
            why = "CREATE ... SELECT, which commits implicitly"
        return Follow(True, bool(self.open), not why, why, ended_before)

    def _statement(self, server_id: int, q: QueryInfo) -> bool:
        """Follow one statement; True when it is a CREATE or DROP of temporary tables only (neither
        commits implicitly)."""
        sql = q.sql.lstrip()
        if sql[:1] in (b"/", b"#", b"-"):
            sql = _COMMENT.sub(b" ", sql).lstrip()     # a comment before the statement
        if not sql[:6].upper().startswith(_FIRST_WORDS):
            return False
        session = (server_id, q.thread_id)
        text = _VERSIONED.sub(rb" \1 ", _COMMENT.sub(b" ", sql)).strip()
        if m := _CREATE.match(text):
            self.open.setdefault(session, set()).add(_table(m.group(1), m.group(2), q.db))
            return True
        if m := _DROP.match(text):
            return self._drop(session, bool(m.group(1)), m.group(2), q.db, session_end=b"/*!40005" in sql)
        if (m := _RENAME.match(text)) and session in self.open:
            tables = self.open[session]
            old = _table(m.group(1), m.group(2), q.db)
            if old in tables:
                tables.discard(old)
                tables.add(_table(m.group(3), m.group(4), q.db))
        return False

    def _drop(self, session: Session, temporary: bool, names: bytes, db: str, *, session_end: bool) -> bool:
        tables = self.open.get(session)
        if session_end:
            # The server's DROP /*!40005 TEMPORARY */ TABLE IF EXISTS when a session ends: all of them.
            self.open.pop(session, None)
            return True
        dropped = []
        at = 0
        while m := _LIST_ITEM.match(names, at):
            dropped.append(_table(m.group(1), m.group(2), db))
            at = m.end()
            if not m.group(3):
                break
        if tables is None:
            return temporary
        # DROP TABLE of temporary tables only does not commit either (the server logs it as DROP TEMPORARY).
        only_temporary = temporary or bool(dropped) and set(dropped) <= tables
        tables.difference_update(dropped)
        if not tables:
            del self.open[session]
        return only_temporary


def _table(first: bytes, second: bytes | None, db: str) -> Table:
    schema, name = (first, second) if second is not None else (None, first)
    return (_ident(schema) if schema is not None else db, _ident(name))


def _ident(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text[1:-1].replace("``", "`") if text.startswith("`") else text
