"""MariaDB's own (parallel) replication applier fed a binlog from files: the "relay-log trick".

The target is started with ``--relay-log=<dir>/<source binlog basename>`` (so the copied
files keep their names), ``--skip-slave-start`` and a server_id different from the
source's (a replica skips events carrying its own server_id). Then:

1. the source binlogs from the backup's file onward are copied into ``<dir>`` and listed,
   one absolute path a line, in the relay log ``.index``;
2. ``CHANGE MASTER TO MASTER_HOST=<dummy>, MASTER_LOG_FILE=<backup file>,
   MASTER_LOG_POS=<backup pos>, RELAY_LOG_FILE=<backup file>, RELAY_LOG_POS=<backup pos>``.
   RELAY_LOG_FILE must be the *basename*: the server joins it to the relay log directory
   and looks it up in the index (an absolute path fails with error 1380 "Could not find
   target log during relay log initialization" on 10.11). CHANGE MASTER opens the relay log,
   which appends one new, empty relay file to the index: harmless, it is where the SQL
   thread waits once it has read everything;
3. ``SET GLOBAL slave_parallel_threads=N, slave_parallel_mode=...``;
4. ``START SLAVE SQL_THREAD`` (the I/O thread never runs, so the dummy master is never
   contacted), then ``MASTER_POS_WAIT(<last source file>, <its size>)`` returns once the
   SQL thread has executed everything (the position is in source-binlog coordinates,
   ``Exec_Master_Log_Pos``). The wait is done in 1 s slices so that an SQL thread error
   is reported (with ``Last_SQL_Error``) instead of waited on forever.

The time measured is from START SLAVE to the wait returning. Copying the files and
CHANGE MASTER are set-up, like restoring the backup.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from binreplay.devtools.sandbox import Sandbox

RELAY_DIR = "relay"
DUMMY_MASTER = "MASTER_HOST='127.0.0.1', MASTER_PORT=9, MASTER_USER='nobody', MASTER_PASSWORD=''"


def relay_options(basedir: Path, source_binlog_basename: str) -> dict[str, str | None]:
    """mariadbd options for a target that will apply `source_binlog_basename`.NNNNNN as relay logs."""
    relay = Path(basedir).resolve() / RELAY_DIR / source_binlog_basename
    return {"relay_log": str(relay), "relay_log_index": f"{relay}.index", "skip_slave_start": None}


def _slave_status(target: Sandbox) -> dict:
    with target.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW SLAVE STATUS")
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else {}


class ReplicationError(RuntimeError):
    pass


def prepare(target: Sandbox, files: list[Path], start_file: str, start_pos: int,
            threads: int, mode: str) -> None:
    """Copy the binlogs in as relay logs and point the (stopped) replica at the backup's position."""
    files = [f for f in files if f.name >= start_file]
    base = files[0].name.rsplit(".", 1)[0]
    relay_dir = target.basedir / RELAY_DIR
    relay_dir.mkdir(exist_ok=True)
    for f in files:
        shutil.copyfile(f, relay_dir / f.name)
    (relay_dir / f"{base}.index").write_text("".join(f"{relay_dir / f.name}\n" for f in files))
    target.execute(f"CHANGE MASTER TO {DUMMY_MASTER}, MASTER_LOG_FILE='{start_file}', MASTER_LOG_POS={start_pos}, "
                   f"RELAY_LOG_FILE='{start_file}', RELAY_LOG_POS={start_pos}")
    target.execute(f"SET GLOBAL slave_parallel_threads={int(threads)}")
    target.execute(f"SET GLOBAL slave_parallel_mode='{mode}'")


def apply(target: Sandbox, files: list[Path], timeout: float = 3600) -> float:
    """START SLAVE SQL_THREAD and wait until the last file's end is executed; seconds taken."""
    last = files[-1]
    end = last.stat().st_size
    with target.connect() as conn, conn.cursor() as cur:
        t0 = time.monotonic()
        cur.execute("START SLAVE SQL_THREAD")
        while True:
            cur.execute("SELECT MASTER_POS_WAIT(%s, %s, 1)", (last.name, end))
            (result,) = cur.fetchone()
            if result is not None and result >= 0:
                seconds = time.monotonic() - t0
                break
            st = _slave_status(target)
            if st.get("Slave_SQL_Running") != "Yes" or st.get("Last_SQL_Errno"):
                raise ReplicationError(f"SQL thread stopped: {st.get('Last_SQL_Errno')} {st.get('Last_SQL_Error')}"
                                       f" at {st.get('Relay_Master_Log_File')}:{st.get('Exec_Master_Log_Pos')}")
            if time.monotonic() - t0 > timeout:
                raise ReplicationError(f"not done after {timeout}s: at {st.get('Relay_Master_Log_File')}:"
                                       f"{st.get('Exec_Master_Log_Pos')}")
        cur.execute("STOP SLAVE SQL_THREAD")
    st = _slave_status(target)
    if st.get("Last_SQL_Errno"):
        raise ReplicationError(f"SQL thread error: {st.get('Last_SQL_Errno')} {st.get('Last_SQL_Error')}")
    return seconds


def replay(target: Sandbox, files: list[Path], start_file: str, start_pos: int, *,
           threads: int = 8, mode: str = "conservative") -> float:
    prepare(target, files, start_file, start_pos, threads, mode)
    return apply(target, [f for f in files if f.name >= start_file])
