"""What `mariadb-binlog --stop-position=P | mariadb` leaves of a transaction that P cuts.

The pipe runs every event that starts before P (row events as BINLOG statements, each flushed at
the end of its statement), then `ROLLBACK /* added by mysqlbinlog */`. What the ROLLBACK cannot
take back (measured on MariaDB 10.11):

- a statement that commits implicitly (CREATE TABLE ... SELECT's CREATE), and the row statements
  after it, which run in autocommit mode;
- changes to tables that cannot roll back (MyISAM, Aria, ...): MariaDB logs them in a group of their
  own, whose GTID is not flagged transactional and which ends in COMMIT, not XID (a group that ends
  in XID went to a transactional engine, even when its GTID lacks the flag).

binreplay applies a transaction whole or not at all, so it says what the pipe would have kept.
"""

from __future__ import annotations

import struct

from binreplay.binlog import constants as C
from binreplay.binlog.boundaries import is_transaction_control
from binreplay.binlog.header import post_header_len, table_id_len
from binreplay.model import Event, MariadbGtid, QueryInfo, Transaction


def kept_by_pipe(trx: Transaction, stop_pos: int) -> str | None:
    """What of `trx`, cut at `stop_pos`, the pipe would have left applied (None: nothing)."""
    before = [ev for ev in trx.events if ev.start < stop_pos]
    statements = [ev for ev in before if isinstance(ev.info, QueryInfo) and not is_transaction_control(ev.info.sql)]
    rows = _complete_row_statements(before, trx)
    if trx.implicit_commit and statements:
        first = statements[0]
        assert isinstance(first.info, QueryInfo)
        kept = f"its statement {_shown(first.info)}, which commits implicitly"
        if rows:
            kept += f", and the rows of {rows} row statement(s) after it, which autocommit"
        return kept
    gtid = trx.gtid
    ends_in_xid = bool(trx.spans) and trx.spans[-1][0] == C.XID_EVENT
    if (isinstance(gtid, MariadbGtid) and not gtid.flags & C.FL_TRANSACTIONAL and not ends_in_xid
            and (rows or statements)):
        what = " and ".join(part for part in (f"{rows} row statement(s)" if rows else "",
                                              f"{len(statements)} statement(s)" if statements else "") if part)
        tables = ", ".join(f"`{s}`.`{t}`" for s, t in sorted(trx.tables)) or "its tables"
        return f"the changes of its {what} before it to {tables}, which cannot roll back"
    return None


def _complete_row_statements(events: list[Event], trx: Transaction) -> int:
    """Row statements among `events` whose last rows event (flagged STMT_END) is there too."""
    count = 0
    for ev in events:
        if ev.type_code in C.ROWS_EVENTS:
            at = C.HEADER_LEN + table_id_len(post_header_len(trx.fde, ev.type_code))
            count += bool(struct.unpack_from("<H", ev.raw, at)[0] & C.STMT_END_F)
    return count


def _shown(q: QueryInfo) -> str:
    text = " ".join(q.sql_text.split())
    return repr(text if len(text) <= 80 else text[:80] + "...")
