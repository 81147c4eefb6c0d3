"""The session context of replayed statements: what a target session must be told before a source
statement runs, sent only when it differs from what the session already has (as mysqlbinlog does).

The QUERY event's status variables carry it: timestamp, pseudo thread id, sql_mode, flags2
(foreign/unique checks, auto_is_null, MariaDB's check constraints, IF EXISTS, explicit defaults,
system versioning), auto-increment, character sets and collations, time zone, lc_time_names,
the default database. INTVAR, RAND and USER_VAR events are context too. A `Dialect` adapts it to
the target: as it is for exact BINLOG replays, translated for another flavour with --apply sql.
"""

from __future__ import annotations

import struct
from typing import Protocol

from binreplay.apply.packets import Part, SessionState
from binreplay.binlog import constants as C
from binreplay.binlog.column_types import decode_decimal
from binreplay.binlog.events import DECIMAL_RESULT, INT_RESULT, REAL_RESULT
from binreplay.model import Event, IntvarInfo, QueryContext, QueryInfo, RandInfo, UserVarInfo
from binreplay.server.sql import quote_ident, quote_string

# flags2 bits (sql_priv.h); the rest of the word is not session state we can set.
# Bit values checked against what mariadb-binlog prints for events written with each variable toggled.
OPTION_AUTO_IS_NULL = 1 << 14
OPTION_NO_FOREIGN_KEY_CHECKS = 1 << 26
OPTION_RELAXED_UNIQUE_CHECKS = 1 << 27
# MariaDB only
MARIADB_NO_CHECK_CONSTRAINT_CHECKS = 1 << 15
MARIADB_EXPLICIT_DEFAULTS_FOR_TIMESTAMP = 1 << 24
MARIADB_IF_EXISTS = 1 << 28
MARIADB_INSERT_HISTORY = 1 << 30


class Dialect(Protocol):
    """How the source's context is said to the target."""

    def collation(self, cid: int, source_flavor: str) -> int: ...

    def has_variable(self, name: str, source_flavor: str) -> bool: ...

    def sql_mode(self, mode: int, source_flavor: str) -> int: ...

    def statement(self, sql: bytes) -> bytes: ...


class Verbatim:
    """The context as the source wrote it (exact replays: the target understands the source)."""

    def collation(self, cid: int, source_flavor: str) -> int:
        return cid

    def has_variable(self, name: str, source_flavor: str) -> bool:
        return True

    def sql_mode(self, mode: int, source_flavor: str) -> int:
        return mode

    def statement(self, sql: bytes) -> bytes:
        return sql


class SessionContext:
    """Context statements for one session; `collations` maps id -> (charset, collation) on the target."""

    def __init__(self, state: SessionState, collations: dict[int, tuple[str, str]], flavor: str,
                 dialect: Dialect) -> None:
        self.state = state
        self.collations = collations
        self.flavor = flavor             # the target's
        self.dialect = dialect
        self.pseudo_thread = True        # False: the user may not set pseudo_thread_id (--apply sql)

    def event_parts(self, ev: Event, source_flavor: str) -> list[Part]:
        """An INTVAR, RAND or USER_VAR event as the SET statement it stands for."""
        t = ev.type_code
        if t == C.INTVAR_EVENT:
            info = ev.info
            assert isinstance(info, IntvarInfo)
            name = b"LAST_INSERT_ID" if info.kind == 1 else b"INSERT_ID"
            return [Part(b"SET " + name + b"=" + str(info.value).encode(), "set")]
        if t == C.RAND_EVENT:
            r = ev.info
            assert isinstance(r, RandInfo)
            return [Part(f"SET @@RAND_SEED1={r.seed1}, @@RAND_SEED2={r.seed2}".encode(), "set")]
        u = ev.info
        assert isinstance(u, UserVarInfo)
        name = quote_ident(u.name.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
        literal = self.user_var_literal(u, self._collation(u.charset, source_flavor))
        return [Part(b"SET @" + name + b":=" + literal, "set")]

    def _set_if_changed(self, key: str, value: object, sql: str, out: list[bytes]) -> None:
        if self.state.values.get(key, object()) != value:
            self.state.values[key] = value
            out.append(sql.encode())

    def _collation(self, cid: int, source_flavor: str) -> int:
        return self.dialect.collation(cid, source_flavor)

    def _has_variable(self, name: str, source_flavor: str) -> bool:
        return self.dialect.has_variable(name, source_flavor)

    def statement_context(self, ev: Event, q: QueryInfo, source_flavor: str) -> list[bytes]:
        """The SET statements (and USE) a source statement needs before it, only those that change."""
        out: list[bytes] = []
        ctx: QueryContext = q.context
        usec = ctx.microseconds
        out.append((f"SET TIMESTAMP={ev.timestamp}.{usec:06d}" if usec is not None
                    else f"SET TIMESTAMP={ev.timestamp}").encode())
        if self.pseudo_thread:
            self._set_if_changed("pseudo_thread_id", q.thread_id,
                                 f"SET @@session.pseudo_thread_id={q.thread_id}", out)
        if ctx.flags2 is not None:
            f = ctx.flags2
            parts = [
                f"@@session.foreign_key_checks={0 if f & OPTION_NO_FOREIGN_KEY_CHECKS else 1}",
                f"@@session.sql_auto_is_null={1 if f & OPTION_AUTO_IS_NULL else 0}",
                f"@@session.unique_checks={0 if f & OPTION_RELAXED_UNIQUE_CHECKS else 1}",
            ]
            if self.flavor == "mariadb" and self._has_variable("mariadb_flags2", source_flavor):
                parts += [
                    f"@@session.check_constraint_checks={0 if f & MARIADB_NO_CHECK_CONSTRAINT_CHECKS else 1}",
                    f"@@session.sql_if_exists={1 if f & MARIADB_IF_EXISTS else 0}",
                    "@@session.explicit_defaults_for_timestamp="
                    f"{1 if f & MARIADB_EXPLICIT_DEFAULTS_FOR_TIMESTAMP else 0}",
                    f"@@session.system_versioning_insert_history={1 if f & MARIADB_INSERT_HISTORY else 0}",
                ]
            self._set_if_changed("flags2", tuple(parts), "SET " + ", ".join(parts), out)
        if ctx.sql_mode is not None:
            mode = self.dialect.sql_mode(ctx.sql_mode, source_flavor)
            self._set_if_changed("sql_mode", mode, f"SET @@session.sql_mode={mode}", out)
        inc, off = ctx.auto_increment or (1, 1)
        self._set_if_changed("auto_increment", (inc, off), f"SET @@session.auto_increment_increment={inc}, "
                             f"@@session.auto_increment_offset={off}", out)
        if ctx.charset is not None:
            c, conn, srv = (self._collation(cid, source_flavor) for cid in ctx.charset)
            self._set_if_changed("charset", (c, conn, srv),
                                 f"SET @@session.character_set_client={c}, @@session.collation_connection={conn}, "
                                 f"@@session.collation_server={srv}", out)
        tz = ctx.time_zone or "SYSTEM"
        self._set_if_changed("time_zone", tz, f"SET @@session.time_zone={quote_string(tz)}", out)
        self._set_if_changed("lc_time_names", ctx.lc_time_names or 0,
                             f"SET @@session.lc_time_names={ctx.lc_time_names or 0}", out)
        cdb = ctx.charset_database and self._collation(ctx.charset_database, source_flavor)
        self._set_if_changed("collation_database", cdb,
                             f"SET @@session.collation_database={cdb if cdb else 'DEFAULT'}", out)
        if ctx.explicit_defaults_for_timestamp is not None:
            v = ctx.explicit_defaults_for_timestamp
            self._set_if_changed("explicit_defaults_for_timestamp", v,
                                 f"SET @@session.explicit_defaults_for_timestamp={v}", out)
        if ctx.default_collation_for_utf8mb4 is not None and self._has_variable("default_collation_for_utf8mb4",
                                                                                source_flavor):
            v = ctx.default_collation_for_utf8mb4
            self._set_if_changed("default_collation_for_utf8mb4", v,
                                 f"SET @@session.default_collation_for_utf8mb4={v}", out)
        if q.db and not ev.flags & C.LOG_EVENT_SUPPRESS_USE_F and self.state.database != q.db:
            self.state.database = q.db
            out.append(b"USE " + quote_ident(q.db).encode("utf-8"))
        return out

    def user_var_literal(self, u: UserVarInfo, collation_id: int) -> bytes:
        if u.value is None:
            return b"NULL"
        if u.value_type == REAL_RESULT:
            return repr(struct.unpack("<d", u.value)[0]).encode()
        if u.value_type == INT_RESULT:
            return str(int.from_bytes(u.value[:8], "little", signed=not u.unsigned)).encode()
        if u.value_type == DECIMAL_RESULT:
            return decode_decimal(u.value[0], u.value[1], u.value[2:]).encode()
        charset, collation = self.collations.get(collation_id, ("binary", "binary"))
        literal = b"_" + charset.encode() + b" X'" + u.value.hex().encode() + b"'"
        if charset != "binary":
            literal += b" COLLATE " + quote_ident(collation).encode()
        return literal
