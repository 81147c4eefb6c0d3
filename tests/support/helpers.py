"""Helpers for tests that run against real sandbox servers (see conftest.py)."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import IO

import pymysql

from binreplay.devtools.compare import compare_servers
from binreplay.devtools.sandbox import Sandbox
from binreplay.server.sql import SYSTEM_SCHEMAS, quote_ident

_CHANGE_MASTER = re.compile(rb"CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)")
_HEAD_LIMIT = 1 << 20       # the coordinates come before any table data
_ER_READ_ONLY_VARIABLE = 1238
# Binlog state, reset by RESET MASTER rather than by SET GLOBAL.
_BINLOG_STATE_VARIABLES = frozenset({"gtid_binlog_pos", "gtid_binlog_state", "gtid_current_pos"})
_ER_NO_SUCH_THREAD = 1094


# ---- restored backup --------------------------------------------------------

def snapshot_to_target(source: Sandbox, target: Sandbox, schemas: list[str]) -> tuple[str, int]:
    """Copy schemas (definitions and data) from source to target like a restored backup.

    Pipes `mariadb-dump --single-transaction --master-data=2` into `mariadb` and
    returns the source's binlog (file basename, position) the dump is consistent
    with, so a replay can start exactly there.
    """
    if not schemas:
        return source.master_status()
    dump_cmd = [
        _tool("mariadb-dump"), *source.client_args(), "--single-transaction", "--master-data=2",
        "--routines", "--triggers", "--events", "--hex-blob", "--databases", *schemas,
    ]
    load_cmd = [_tool("mariadb"), *target.client_args()]
    with (
        tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as load_err,
        subprocess.Popen(load_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=load_err) as load,
        subprocess.Popen(dump_cmd, stdout=subprocess.PIPE, stderr=dump_err) as dump,
    ):
        assert dump.stdout is not None and load.stdin is not None
        try:
            coords = _pump(dump.stdout, load.stdin)
        finally:
            with contextlib.suppress(BrokenPipeError):
                load.stdin.close()
        dump.stdout.close()  # unblocks the dump if the loader quit early
        dump_rc, load_rc = dump.wait(), load.wait()
        _check(load_rc, "mariadb (load)", load_err)  # the root cause when both fail
        _check(dump_rc, "mariadb-dump", dump_err)
    if coords is None:
        raise RuntimeError("mariadb-dump output has no CHANGE MASTER coordinates")
    return coords


def _pump(src: IO[bytes], dst: IO[bytes]) -> tuple[str, int] | None:
    """Copy the dump into the loader, picking the binlog coordinates out of its head."""
    head = b""
    coords: tuple[str, int] | None = None
    while chunk := src.read(1 << 16):
        if coords is None and len(head) < _HEAD_LIMIT:
            head += chunk
            if m := _CHANGE_MASTER.search(head):
                coords = (m.group(1).decode(), int(m.group(2)))
        try:
            dst.write(chunk)
        except BrokenPipeError:
            break  # the loader failed; its exit status and stderr tell why
    return coords


def _check(returncode: int, what: str, stderr: IO[bytes]) -> None:
    if returncode != 0:
        stderr.seek(0)
        raise RuntimeError(f"{what} failed ({returncode}): {stderr.read().decode(errors='replace')}")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: apt-get install mariadb-client")
    return path


# ---- content assertions -----------------------------------------------------

def assert_same_content(source: Sandbox, target: Sandbox, schemas: list[str] | None = None) -> None:
    """Fail with a readable list of differences unless target matches source exactly."""
    with source.connect() as ref, target.connect() as tgt:
        diffs = compare_servers(ref, tgt, schemas=schemas)
    if diffs:
        shown = "\n".join(f"  - {d}" for d in diffs[:50])
        more = f"\n  ... and {len(diffs) - 50} more" if len(diffs) > 50 else ""
        raise AssertionError(
            f"{len(diffs)} difference(s) between {source.name} and {target.name}:\n{shown}{more}")


# ---- resetting servers between tests ----------------------------------------

@dataclass(frozen=True)
class ServerBaseline:
    """What a freshly started sandbox looks like, to return to between tests."""
    global_variables: dict[str, str]
    accounts: frozenset[tuple[str, str]]


def capture_baseline(sandbox: Sandbox) -> ServerBaseline:
    return ServerBaseline(
        global_variables=_global_variables(sandbox),
        accounts=frozenset(_accounts(sandbox)),
    )


def reset_server(sandbox: Sandbox, baseline: ServerBaseline) -> None:
    """Return a sandbox to its baseline quickly (no restart unless it is down)."""
    if not sandbox.is_running():
        sandbox.start()  # a test may have killed it
    _kill_other_connections(sandbox)  # they could hold locks that block DROP
    _restore_globals(sandbox, baseline.global_variables)
    sandbox.execute("SET SESSION foreign_key_checks = 0")  # cross-schema FKs
    for (schema,) in sandbox.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"):
        if schema not in SYSTEM_SCHEMAS:
            sandbox.execute(f"DROP DATABASE {quote_ident(schema)}")
    sandbox.execute("SET SESSION foreign_key_checks = 1")
    _drop_extra_accounts(sandbox, baseline.accounts)
    if sandbox.log_bin:
        sandbox.execute("RESET MASTER")


def _global_variables(sandbox: Sandbox) -> dict[str, str]:
    return {str(k): str(v) for k, v in sandbox.execute("SHOW GLOBAL VARIABLES")}


def _restore_globals(sandbox: Sandbox, baseline: dict[str, str]) -> None:
    current = _global_variables(sandbox)
    for name, value in baseline.items():
        if current.get(name) == value or name in _BINLOG_STATE_VARIABLES:
            continue
        try:
            sandbox.execute(f"SET GLOBAL {name} = {_sql_value(value)}")
        except pymysql.err.MySQLError as exc:
            if exc.args[0] != _ER_READ_ONLY_VARIABLE:  # cannot have been changed by a test
                raise


def _sql_value(value: str) -> str:
    # Numeric variables reject quoted strings; everything else is a string.
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _kill_other_connections(sandbox: Sandbox) -> None:
    rows = sandbox.execute(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND COMMAND <> 'Daemon' AND USER <> 'system user'")
    for (thread_id,) in rows:
        try:
            sandbox.execute(f"KILL CONNECTION {int(thread_id)}")
        except pymysql.err.MySQLError as exc:
            if exc.args[0] != _ER_NO_SUCH_THREAD:  # it may have ended by itself meanwhile
                raise


def _accounts(sandbox: Sandbox) -> set[tuple[str, str]]:
    return {(str(u), str(h)) for u, h in sandbox.execute("SELECT User, Host FROM mysql.user")}


def _drop_extra_accounts(sandbox: Sandbox, baseline: frozenset[tuple[str, str]]) -> None:
    for user, host, is_role in sandbox.execute("SELECT User, Host, is_role FROM mysql.user"):
        if (user, host) in baseline:
            continue
        name = f"'{user}'" if is_role == "Y" else f"'{user}'@'{host}'"
        sandbox.execute(f"DROP {'ROLE' if is_role == 'Y' else 'USER'} {name}")



# ---- running binreplay ----------------------------------------------------------

def binlogs_from(source: Sandbox, first: str) -> list[str]:
    """The source's binlog files from `first` on (the file a backup's coordinates name)."""
    source.execute("FLUSH BINARY LOGS")  # close the active file so its tail is final
    return [str(p) for p in source.binlog_files() if p.name >= first]


def run_binreplay(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
                  ) -> subprocess.CompletedProcess[str]:
    """The real CLI in a real process: exit codes and stderr are part of the contract."""
    import os
    import sys

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "binreplay", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def replay_into(source: Sandbox, target: Sandbox, start: tuple[str, int], *extra: str,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    files = binlogs_from(source, start[0])
    return run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                         "--progress", "json", *extra, env=env)
