"""`binreplay forget`: remove the progress schema once the restore is accepted.

The progress records are what make a replay resumable, so they are only removed when no replay
holds the run lock, and (unless --force) when the last run completed: an interrupted or failed
run could still be resumed from them. It says what it removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from binreplay.errors import StateConflictError
from binreplay.server.catalog import schema_names
from binreplay.server.connection import ServerConfig, check_privilege, connect
from binreplay.server.sql import quote_ident
from binreplay.state.readback import ProgressReadback
from binreplay.state.store import ProgressStore


@dataclass
class Forgotten:
    """What `forget` removed (nothing when the schema was not there)."""

    schema: str
    removed: bool = False
    tables: list[str] = field(default_factory=list)
    last_run: int | None = None
    last_state: str | None = None
    low_water_mark: str | None = None    # where the last run got to

    def line(self) -> str:
        q = quote_ident(self.schema)
        if not self.removed:
            return f"binreplay: nothing to forget: the target has no schema {q}"
        run = (f"; its last run {self.last_run} was {self.last_state}"
               f"{f' up to {self.low_water_mark}' if self.low_water_mark else ''}" if self.last_run else "")
        return f"binreplay: removed the progress schema {q} (tables: {', '.join(self.tables) or 'none'}){run}"


def forget(cfg: ServerConfig, schema: str, *, force: bool, target_binlog: str) -> Forgotten:
    conn = connect(cfg.resolved())
    try:
        result = Forgotten(schema)
        if schema not in schema_names(conn):
            return result
        if target_binlog == "off":
            check_privilege(conn, "SET SESSION sql_log_bin=0",
                            "BINLOG ADMIN (or SUPER), to keep the DROP out of the target's binlog "
                            "(--target-binlog off)")
        store = ProgressStore(conn, schema)
        holder = store.lock_holder()
        if holder is not None:
            raise StateConflictError(f"a replay into this target is running now (connection {holder} holds the "
                                     f"lock of {quote_ident(schema)}): not removed")
        store.lock()   # so no replay starts while the schema is dropped
        readback = ProgressReadback(conn, schema)
        run = readback.last_run()
        if run is not None:
            result.last_run, result.last_state = run.run_id, run.state
            mark = readback.low_water_mark(run.run_id)
            result.low_water_mark = f"{mark.binlog_file}:{mark.pos}" if mark is not None else None
            if run.state not in ("complete", "abandoned") and not force:
                raise StateConflictError(
                    f"the last run ({run.run_id}) is {run.state}: its progress records are what lets a rerun resume "
                    f"it{f' after {result.low_water_mark}' if result.low_water_mark else ''}; add --force to remove "
                    "them anyway")
        result.tables = store.drop()
        result.removed = True
        return result
    finally:
        conn.close()
