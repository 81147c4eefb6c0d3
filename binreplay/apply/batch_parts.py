"""A batch or a transaction applied in parts: a group's members one at a time (to find the one
carrying an event the target found corrupt), and CREATE TABLE ... SELECT cut at its implicit commit
(the statement journaled, the rows after it atomic with their record)."""

from __future__ import annotations

import dataclasses

from binreplay.binlog.boundaries import Control, is_transaction_control, statement_control
from binreplay.binlog.constants import ROWS_EVENTS
from binreplay.errors import UnsupportedError
from binreplay.model import QueryInfo, Transaction, TrxKind
from binreplay.schedule.batches import Batch


def split_at_implicit_commit(trx: Transaction) -> tuple[Transaction | None, Transaction | None]:
    """A journaled transaction as (its statement, the rows after it): CREATE TABLE ... SELECT's CREATE
    (with the GTID and statement context before it) and the rows that follow it as a plain row
    transaction (None when there are none: a standalone statement, or a SELECT that found nothing;
    no statement when the filters dropped it). Nothing is ever dropped: a statement after the cut
    (which only rows and their COMMIT follow in CREATE TABLE ... SELECT) is refused (exit 7)."""
    if not trx.implicit_commit:
        return trx, None
    events = trx.events
    cut = next((i + 1 for i, ev in enumerate(events)
                if isinstance(ev.info, QueryInfo) and not is_transaction_control(ev.info.sql)), 0)
    statement = trx.with_events(events[:cut], kind=TrxKind.DDL, implicit_commit=False) if cut else None
    rest = events[cut:]
    extra = next((ev for ev in rest if isinstance(ev.info, QueryInfo)
                  and statement_control(ev.info.sql) not in (Control.COMMIT, Control.ROLLBACK)), None)
    if extra is not None:
        assert isinstance(extra.info, QueryInfo)
        shown = " ".join(extra.info.sql_text.split())
        raise UnsupportedError(
            f"the transaction at {trx.start} ({trx.gtid or 'no GTID'}) commits implicitly at its first statement, "
            f"but another statement follows it ({shown[:80]!r} at position {extra.start}), which binreplay cannot "
            "apply after that commit exactly; nothing of it was applied, everything before it was")
    if not any(ev.type_code in ROWS_EVENTS for ev in rest):
        return statement, None
    return statement, trx.with_events(rest, kind=TrxKind.ROWS, implicit_commit=False, gtid=None)


def one_at_a_time(batch: Batch) -> list[Batch]:
    """`batch` as batches of one member each, in order, together covering its range: each records
    the source range from the end of the member before it (the batch's start for the first). A batch
    cut by table (schedule/partition.py) holds members of the other batch between its own: each of
    its members records only itself."""
    out = []
    start = batch.start_pos
    for trx in batch.members:
        if batch.ranges is not None:
            start = trx.start_pos
        # Everything else (temporary-table state, source starts) is the batch's: its members share it.
        out.append(dataclasses.replace(batch, start_pos=start, end_pos=trx.end_pos, members=[trx], covered=1,
                                       size=trx.end_pos - trx.start_pos, statement=None, ranges=None))
        start = trx.end_pos
    return out
