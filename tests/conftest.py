"""Session-wide real MariaDB servers for the test suite (no mocks).

`source` logs binlogs (ROW, server_id 1); `target` plays the restored backup
(no binlog, server_id 2). Both start once per pytest session and are stopped
at its end, also after Ctrl-C (pytest tears fixtures down on KeyboardInterrupt);
if pytest itself is killed the kernel SIGTERMs them (die_with_parent).

Tests that change server state should request `clean_servers`, which resets
both servers first and returns (source, target).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from binreplay.devtools.sandbox import Sandbox, create_sandbox, ensure_server_binaries

from faultlab import ReliabilityLog
from helpers import ServerBaseline, capture_baseline, reset_server

# The reports these variables name tally one process's tests (see `reliability`, tests/unit/test_fuzz_reader.py).
_REPORT_OUTS = ("BINREPLAY_RELIABILITY_OUT", "BINREPLAY_BAD_INPUT_OUT")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """A run that writes a report takes one process: xdist workers (addopts) would each write their share
    over the others'. Runs before xdist's own hook, which then starts no workers."""
    if any(os.environ.get(var) for var in _REPORT_OUTS) and hasattr(config.option, "numprocesses"):
        config.option.numprocesses = 0


@pytest.fixture(scope="session")
def sandbox_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ensure_server_binaries()
    return tmp_path_factory.mktemp("servers")


def _session_sandbox(root: Path, name: str, *, server_id: int, log_bin: bool) -> Iterator[Sandbox]:
    sandbox = create_sandbox(root / name, name=name, server_id=server_id, log_bin=log_bin,
                             binlog_format="ROW", die_with_parent=True)
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="session")
def source(sandbox_root: Path) -> Iterator[Sandbox]:
    yield from _session_sandbox(sandbox_root, "source", server_id=1, log_bin=True)


@pytest.fixture(scope="session")
def target(sandbox_root: Path) -> Iterator[Sandbox]:
    yield from _session_sandbox(sandbox_root, "target", server_id=2, log_bin=False)


@pytest.fixture(scope="session")
def _baselines(source: Sandbox, target: Sandbox) -> dict[str, ServerBaseline]:
    return {sb.name: capture_baseline(sb) for sb in (source, target)}


@pytest.fixture
def clean_servers(source: Sandbox, target: Sandbox,
                  _baselines: dict[str, ServerBaseline]) -> tuple[Sandbox, Sandbox]:
    """Both servers with no user schemas, default globals and (source) fresh binlogs."""
    for sandbox in (source, target):
        reset_server(sandbox, _baselines[sandbox.name])
    return source, target


@pytest.fixture(scope="session")
def reliability() -> Iterator[ReliabilityLog]:
    """Fault tests record what they injected and found; with BINREPLAY_RELIABILITY_OUT=<path>
    the table is written there at the end of the session (docs/reliability.md)."""
    import shlex
    import sys
    import time

    log = ReliabilityLog()
    t0 = time.monotonic()
    yield log
    out = os.environ.get("BINREPLAY_RELIABILITY_OUT")
    if out and log.rows:
        command = (f"BINREPLAY_RELIABILITY_OUT={shlex.quote(out)} python -m pytest "
                   + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        log.write(Path(out), command, time.monotonic() - t0)
