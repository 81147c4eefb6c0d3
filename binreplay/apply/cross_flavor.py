"""`--apply sql` across flavours: a MySQL 8 statement's session context, made acceptable to the target.

A QUERY event carries its session context (collation ids, sql_mode bits, MySQL 8's
default_collation_for_utf8mb4) as the source had it. Sent as is to a MariaDB target, even a plain
CREATE TABLE is refused: MariaDB has no default_collation_for_utf8mb4 and no collation 255
(utf8mb4_0900_ai_ci, MySQL 8's default). In SQL mode (the cross-flavour path) the context is
translated; binlog mode sends it exactly (its encoder, apply/encoders.py, does not call this module then).

- Variables the target does not have are skipped: default_collation_for_utf8mb4 on MariaDB, and
  MariaDB's own flags2 bits (check_constraint_checks, ...) when the source is MySQL, which leaves
  them at the target's defaults.
- A collation id the target does not know becomes the target's default collation of the same
  character set (warned once per id, naming both). Which character set an id belongs to comes
  from the target, or for MySQL 8's own ids from `MYSQL_ONLY_COLLATIONS`.
- sql_mode: MySQL's TIME_TRUNCATE_FRACTIONAL (bit 32) is MariaDB's EMPTY_STRING_IS_NULL; it is
  dropped (with a warning) rather than turned into another mode.
- Statement text is changed only where it could not run otherwise: a `COLLATE` clause naming a
  MySQL 8 UCA 9.0.0 collation (`utf8mb4_0900_ai_ci`, `utf8mb4_de_pb_0900_as_cs`, ...) the target
  lacks, outside string literals and comments, gets the target's default utf8mb4 collation. Names
  anywhere else (string literals, routine bodies' strings, comments) are left as they are.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# MySQL 8 collation ids MariaDB does not have, by character set: 255-323 are the UCA 9.0.0
# utf8mb4 collations (utf8mb4_0900_ai_ci = 255 ... utf8mb4_0900_bin = 309 ... 8.0.30's additions),
# 248-250 gb18030 (no such character set on MariaDB: left as is), 76 utf8mb3_tolower_ci.
MYSQL_ONLY_COLLATIONS: dict[int, str] = {**{i: "utf8mb4" for i in range(255, 324)},
                                         **{i: "gb18030" for i in range(248, 251)}, 76: "utf8mb3"}
MYSQL_COLLATION_NAMES = {255: "utf8mb4_0900_ai_ci", 278: "utf8mb4_0900_as_cs", 305: "utf8mb4_0900_as_ci",
                         309: "utf8mb4_0900_bin"}     # the ones a message names (others: by id)
MYSQL_TIME_TRUNCATE_FRACTIONAL = 1 << 32
_UCA900_NAME = re.compile(r"utf8mb4_(?:[a-z]+_)*0900_[a-z_]+", re.IGNORECASE)
# A COLLATE clause (optionally `COLLATE =`) and its name, bare or in backquotes; string literals and
# comments are matched first so that their content is skipped.
_SCAN = re.compile(r"""'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|/\*.*?\*/|(?:--\s|\#)[^\n]*"""
                   r"""|(?P<clause>\bCOLLATE\s*(?:=\s*)?)(?P<q>`?)(?P<name>[A-Za-z0-9_]+)(?P=q)""",
                   re.IGNORECASE | re.DOTALL)


@dataclass
class ContextTranslation:
    """Shared by every worker of a SQL-mode replay (so each mapping is warned about once)."""

    target_flavor: str
    collations: dict[int, tuple[str, str]]        # the target's: id -> (charset, collation)
    defaults: dict[str, int]                      # the target's: charset -> default collation id
    warned: set = field(default_factory=set)

    def has_variable(self, name: str, source_flavor: str) -> bool:
        if name == "default_collation_for_utf8mb4":
            return self.target_flavor == "mysql"
        if name == "mariadb_flags2":
            return self.target_flavor == "mariadb" and source_flavor == "mariadb"
        return True

    def collation(self, cid: int, source_flavor: str) -> int:
        """`cid` if the target knows it, else the target's default of the same charset (if any)."""
        if cid in self.collations:
            return cid
        charset = MYSQL_ONLY_COLLATIONS.get(cid) if source_flavor == "mysql" else None
        default = self.defaults.get(charset) if charset else None
        if default is None:
            return cid          # nothing to map to: the target's own error will name it
        name = MYSQL_COLLATION_NAMES.get(cid, f"a MySQL {charset} collation")
        self._warn(("id", cid), "collation id %d (%s) is unknown to the target; using its default %s collation "
                   "%s instead", cid, name, charset, self.collations[default][1])
        return default

    def sql_mode(self, value: int, source_flavor: str) -> int:
        if source_flavor == "mysql" and self.target_flavor == "mariadb" and value & MYSQL_TIME_TRUNCATE_FRACTIONAL:
            self._warn(("sql_mode",), "sql_mode TIME_TRUNCATE_FRACTIONAL (MySQL only) is not set on the target")
            return value & ~MYSQL_TIME_TRUNCATE_FRACTIONAL
        return value

    def statement(self, sql: bytes) -> bytes:
        """The statement with MySQL 8 collation names in COLLATE clauses mapped, if the target lacks them."""
        if b"0900_" not in sql.lower():
            return sql
        default = self.defaults.get("utf8mb4")
        known = {name.lower() for _, name in self.collations.values()}
        if default is None:
            return sql
        target_name = self.collations[default][1]
        text = sql.decode("utf-8", "surrogateescape")

        def replace(m: re.Match) -> str:
            name = m.group("name")
            if not m.group("clause") or name.lower() in known or not _UCA900_NAME.fullmatch(name):
                return m.group(0)
            self._warn(("name", name.lower()), "collation %s is unknown to the target; statements use its "
                       "default utf8mb4 collation %s instead", name, target_name)
            return m.group("clause") + m.group("q") + target_name + m.group("q")

        out = _SCAN.sub(replace, text)
        return sql if out == text else out.encode("utf-8", "surrogateescape")

    def _warn(self, key: tuple, message: str, *args) -> None:
        if key not in self.warned:
            self.warned.add(key)
            log.warning(message, *args)
