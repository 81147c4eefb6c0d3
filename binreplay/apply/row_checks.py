"""`--apply sql`: every row statement must match exactly the rows the source changed.

In binlog mode the server stops with error 1032 when a row to update or delete is missing; a
plain `UPDATE ... WHERE pk` that matches nothing is no error at all, so a target that differs from
the source would silently diverge further. Each generated statement therefore carries the row
count it must match (`RowCheck`), and two checks enforce it without extra round trips:

- the client compares each statement's affected-row count, which the server reports in its OK
  packet (SQL-mode connections set CLIENT_FOUND_ROWS, so an UPDATE that writes the values a row
  already has counts as matched), to name the statement in the error;
- the server itself refuses to COMMIT a group with a mismatch: after each row statement a cheap
  `SET` adds `ROW_COUNT() <> n` to a session variable, and before the progress row and COMMIT a
  guard fails (error 1242) unless the sum is 0. Without it the mismatch would only be seen after
  the COMMIT that follows in the same packet. (Measured on MariaDB 10.11: the `SET` costs nothing
  visible; the guard, a subquery, costs about 13 us, hence once per group.)
"""

from __future__ import annotations

from dataclasses import dataclass

from binreplay.errors import TargetError

_COUNTER = "@binreplay_unmatched"
RESET = f"SET {_COUNTER} = 0".encode()
# A scalar subquery returning two rows is an error on MySQL and MariaDB alike (1242); it only
# returns two when some statement of the group matched another number of rows (or the counter
# was never reset, which `<=>` also catches).
GUARD = f"SET {_COUNTER} = (SELECT 0 UNION ALL SELECT 1 FROM DUAL WHERE NOT ({_COUNTER} <=> 0))".encode()


@dataclass(frozen=True)
class RowCheck:
    """What one generated statement must match: `expected` rows, for a message naming it."""

    verb: str          # INSERT, UPDATE or DELETE
    table: str         # quoted `db`.`t`
    position: str      # file:pos of the rows event it comes from
    expected: int

    def statement(self) -> bytes:
        """The SET that follows the statement in its packet (see the module docstring)."""
        return f"SET {_COUNTER} = {_COUNTER} + (ROW_COUNT() <> {self.expected})".encode()

    def error(self, found: int) -> TargetError:
        what = "inserted" if self.verb == "INSERT" else "matched"
        return TargetError(f"{self.verb} of {self.table} at {self.position} {what} {found} row"
                           f"{'' if found == 1 else 's'}, expected {self.expected}: the target differs from "
                           "the source (nothing of this transaction was applied; fix the target and rerun "
                           "the same command to resume)")
