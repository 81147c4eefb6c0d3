"""Where transactions begin and end in an event stream, the way the server writes them.

The one definition of a binlog transaction's boundaries, used by the reader (which groups the
events) and the spool (which only appends and cuts files between transactions):

    GTID [BEGIN] ... XID | COMMIT | ROLLBACK | XA_PREPARE     a transaction
    GTID TRANSACTION_PAYLOAD                                  a MySQL compressed transaction
    [GTID] <statement outside BEGIN>                          a transaction by itself (DDL, or a
                                                              non-transactional statement)

A MariaDB GTID event stands in for BEGIN unless it is flagged standalone; a MySQL GTID never
does. Statement context (INTVAR, RAND, USER_VAR), table maps, row events and annotations are
inside the transaction they precede. File-level events (FORMAT_DESCRIPTION, ROTATE, ...) are
never part of one.
"""

from __future__ import annotations

import enum
import re

from binreplay.binlog import constants as C

_CONTROL = re.compile(rb"^\s*(BEGIN|COMMIT|ROLLBACK|XA\s.*)\s*$", re.I | re.S)


class Control(enum.Enum):
    BEGIN = "BEGIN"
    COMMIT = "COMMIT"
    ROLLBACK = "ROLLBACK"
    XA = "XA"


def statement_control(sql: bytes) -> Control | None:
    """What a QUERY event's statement does to the transaction: the one BEGIN/COMMIT/ROLLBACK/XA test."""
    m = _CONTROL.match(sql)
    if m is None:
        return None
    word = m.group(1)[:2].upper()
    return {b"BE": Control.BEGIN, b"CO": Control.COMMIT, b"RO": Control.ROLLBACK}.get(word, Control.XA)


def is_transaction_control(sql: bytes) -> bool:
    """BEGIN, COMMIT or ROLLBACK: a statement that only opens or ends its transaction."""
    return statement_control(sql) in (Control.BEGIN, Control.COMMIT, Control.ROLLBACK)


class Step(enum.Enum):
    OUTSIDE = "outside"   # a file-level event between transactions
    OPEN = "open"         # this event opens a transaction (GTID, BEGIN)
    INSIDE = "inside"     # part of the open transaction
    END = "end"           # this event ends the transaction (XID, COMMIT, ROLLBACK, XA_PREPARE)
    ALONE = "alone"       # a statement outside BEGIN: a whole transaction by itself

    @property
    def between(self) -> bool:
        """After this event the stream is between two transactions."""
        return self in (Step.OUTSIDE, Step.END, Step.ALONE)


class Boundaries:
    """The boundary state of one event stream; feed it every event in order."""

    def __init__(self) -> None:
        self.inside = False   # some event of a transaction was seen and it has not ended
        self.opened = False   # BEGIN seen (or a MariaDB GTID without the standalone flag)

    def state(self) -> tuple[bool, bool]:
        return self.inside, self.opened

    def restore(self, state: tuple[bool, bool]) -> None:
        self.inside, self.opened = state

    def gtid(self, implies_begin: bool) -> Step:
        """A GTID event; `implies_begin` for a MariaDB GTID not flagged standalone."""
        self.inside, self.opened = True, implies_begin
        return Step.OPEN

    def query(self, control: Control | None) -> Step:
        """A QUERY event, with what its statement does to the transaction (statement_control)."""
        if control is Control.BEGIN:
            self.inside = self.opened = True
            return Step.OPEN
        if self.opened and control in (Control.COMMIT, Control.ROLLBACK):
            self.inside = self.opened = False
            return Step.END
        if self.opened:
            return Step.INSIDE
        self.inside = False   # outside BEGIN ... COMMIT a statement commits on its own
        return Step.ALONE

    def event(self, type_code: int) -> Step:
        """Any other event (not GTID, not QUERY)."""
        if type_code in C.FILE_LEVEL_EVENTS:
            return Step.INSIDE if self.inside else Step.OUTSIDE
        # A MySQL TRANSACTION_PAYLOAD carries the rest of its transaction, compressed.
        if type_code in (C.XID_EVENT, C.XA_PREPARE_LOG_EVENT, C.TRANSACTION_PAYLOAD_EVENT):
            self.inside = self.opened = False
            return Step.END
        self.inside = True
        return Step.INSIDE
