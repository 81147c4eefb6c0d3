"""Everything checked before the first transaction is committed: the input (a full read of the
selection, no server contact; an early apply, run/early.py, may hold transactions uncommitted
meanwhile) and the target's privileges for the apply mode.

A corrupt, truncated or misordered file, a bad start position, an event binreplay refuses, or a
stop point the files do not reach stops the run here, with nothing applied.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from binreplay.apply.applier import Applier
from binreplay.apply.packets import binlog_statement
from binreplay.binlog.file import BinlogFile
from binreplay.errors import PastStopError, PrivilegeError, UnsupportedError
from binreplay.model import BinlogPosition, Transaction, TrxKind
from binreplay.report.progress import Reporter
from binreplay.report.summary import Summary
from binreplay.server.connection import ServerInfo, check_privilege
from binreplay.source.reader import BinlogReader, ReaderStats
from binreplay.source.selection import Bounds, Selector, Verdict, check_end, selected
from binreplay.source.validated import ValidatedRead
from binreplay.state.records import ResumeState

log = logging.getLogger(__name__)


@dataclass
class Survey:
    """What a full read of the selection found."""

    selected: int = 0
    in_range: int = 0                   # transactions from the start to the stop point, selected or not
    kinds: dict[str, int] = field(default_factory=dict)   # transaction kind -> count
    has_payload: bool = False                             # a MySQL compressed transaction is selected
    stats: ReaderStats = field(default_factory=ReaderStats)
    stop_reason: str | None = None
    stopped_at: BinlogPosition | None = None   # where the selection ends (None: at the end of the files)
    start_reason: str | None = None            # which event and transaction decided --start-datetime
    end_warnings: list[str] = field(default_factory=list)   # what check_end accepted (an allowed unreached stop)


def survey(bounds: Bounds, files: list[Path], reporter: Reporter, summary: Summary,
           record: ValidatedRead | None = None,
           on_selected: Callable[[Transaction, Verdict], None] | None = None) -> Survey:
    """Read everything once without touching the target: validates the input and counts.
    `on_selected` sees each transaction of the selected range as it is read (run/early.py)."""
    reader = BinlogReader(files, start_file_index=bounds.start_file_index, start_pos=bounds.start_position,
                          on_warning=lambda m: reporter.warn(m, summary), record=record)
    selector = Selector(bounds)
    result = Survey()
    kinds: Counter[TrxKind] = Counter()
    for trx, verdict in selected(reader.transactions(), selector):
        result.in_range += 1
        if on_selected is not None:
            on_selected(trx, verdict)
        if verdict is Verdict.APPLY:
            kinds[trx.kind] += 1
            result.has_payload |= trx.from_payload
    result.selected = sum(kinds.values())
    result.kinds = {kind.value: n for kind, n in kinds.items()}
    result.end_warnings = check_end(selector, bounds, reader)
    result.stats, result.stop_reason, result.stopped_at = reader.stats, selector.stop_reason, selector.stopped_at
    result.start_reason = selector.start_reason
    return result


def validate_input(bounds: Bounds, files: list[Path], reporter: Reporter, summary: Summary, *,
                   compressed_ok: bool = False, on_selected: Callable[[Transaction, Verdict], None] | None = None,
                   ) -> tuple[Survey, ValidatedRead]:
    """The whole selection read once, as the apply pass will read it (every event body parsed):
    returns what it found (transactions to apply, for the ETA; where the selection ends) and what
    the apply read can take back instead of reading again (source/validated.py)."""
    # Its warnings (a truncated last file) are left to the applying pass, which says them once.
    quiet = Reporter(reporter.stream)
    verified = ValidatedRead()
    found = survey(bounds, files, quiet, Summary(), record=verified, on_selected=on_selected)
    if found.has_payload and not compressed_ok:
        raise UnsupportedError("the selection holds compressed MySQL transactions (TRANSACTION_PAYLOAD), which "
                               "cannot be applied as BINLOG statements; rerun with --apply sql; nothing was applied")
    return found, verified


def check_apply_privileges(applier: Applier, first_file: Path, server: ServerInfo) -> None:
    """Fail before applying anything if the user cannot run BINLOG or set the replay session context."""
    fde_event = next(BinlogFile(first_file).events())
    assert applier.conn is not None
    check_privilege(applier.conn, binlog_statement([fde_event.raw]),
                    f"{server.binlog_replay_privilege}, needed to apply row events (BINLOG statements)")
    applier.state.fde_raw = fde_event.raw
    check_privilege(applier.conn, "SET @@session.pseudo_thread_id=@@session.pseudo_thread_id",
                    f"{server.binlog_replay_privilege}, needed to set the session context of replayed statements")


def may_set_pseudo_thread(applier: Applier) -> bool:
    """--apply sql needs no BINLOG privilege; without it, replayed statements run without
    pseudo_thread_id (which only names temporary tables in the target's own binlog)."""
    assert applier.conn is not None
    try:
        check_privilege(applier.conn, "SET @@session.pseudo_thread_id=@@session.pseudo_thread_id", "")
        return True
    except PrivilegeError:
        log.info("the target user may not set pseudo_thread_id; replayed statements run without it")
        return False


def past_stop_error(resume: ResumeState, stop: BinlogPosition | None, reason: str | None,
                    names: list[str]) -> PastStopError | None:
    """The refusal of a target whose progress records (the resumed run's mark and applied rows) go
    beyond where this selection stops (`names`: the run's binlog files), or None when they do not."""
    if stop is None or not resume.resumed:
        return None
    furthest = resume.applied_above.furthest()
    marks = [(m.file_index, m.pos) for m in [resume.low_water] if m is not None] + ([furthest] if furthest else [])
    beyond = max(marks, default=None)
    if beyond is None or beyond <= (stop.file_index, stop.pos):
        return None
    where = f"{names[beyond[0]]}:{beyond[1]}" if beyond[0] < len(names) else f"file #{beyond[0]}:{beyond[1]}"
    return PastStopError(f"the target is already past the requested stop point: run {resume.run_id} applied "
                         f"transactions up to {where}, and this selection ends at {stop} "
                         f"({reason or 'its stop point'}); a replay cannot undo them: restore "
                         "the backup again, then replay with this stop point")
