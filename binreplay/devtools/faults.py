"""Named crash points for the fault-injection tests (test-only; inert unless the env var is set).

BINREPLAY_CRASH_AT="<point>:<n>" makes the process SIGKILL itself the n-th time it
reaches <point>, so tests can prove a rerun neither loses nor repeats anything.
Points: before-commit, after-commit, ddl-started, ddl-executed, checkpoint.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("BINREPLAY_CRASH_AT", "")
_POINT, _, _N = _SPEC.partition(":")
_TARGET = int(_N) if _N.isdigit() else 1
_seen = 0


def crash_point(name: str) -> None:
    global _seen
    if not _POINT or name != _POINT:
        return
    _seen += 1
    if _seen == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
