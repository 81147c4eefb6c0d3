"""Named crash points for the fault-injection tests (test-only; inert unless the env var is set).

BINREPLAY_CRASH_AT="<point>:<n>" makes the process SIGKILL itself the n-th time it
reaches <point>, so tests can prove a rerun neither loses nor repeats anything.
Points: before-commit, after-commit, ddl-started, ddl-executed (for CREATE TABLE ... SELECT: between
the CREATE and its rows), checkpoint, temporary-open (between the members of a span with temporary
tables, applied as one commit: schedule/temporary.py).

BINREPLAY_DISCONNECT_AT="<point>:<n>" makes `disconnect_point` true the n-th time <point> is reached,
where the caller then loses its target connection (the server ends the session): ddl-executed.

BINREPLAY_EARLY_LOCKSTEP=1 makes the validation read wait, after each batch it hands to the early
apply (run/early.py), until that batch is applied (held): so a test knows what is held when the read
ends or fails. Crash point early-held: the early apply has applied a batch (held, not committed).
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("BINREPLAY_CRASH_AT", "")
_POINT, _, _N = _SPEC.partition(":")
_TARGET = int(_N) if _N.isdigit() else 1
_seen = 0
_DISCONNECT, _, _DISCONNECT_N = os.environ.get("BINREPLAY_DISCONNECT_AT", "").partition(":")
_disconnect_target = int(_DISCONNECT_N) if _DISCONNECT_N.isdigit() else 1
_disconnect_seen = 0
EARLY_LOCKSTEP = os.environ.get("BINREPLAY_EARLY_LOCKSTEP") == "1"


def crash_point(name: str) -> None:
    global _seen
    if not _POINT or name != _POINT:
        return
    _seen += 1
    if _seen == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)


def disconnect_point(name: str) -> bool:
    """True the n-th time `name` is reached when BINREPLAY_DISCONNECT_AT names it (the caller then
    loses its connection, as after a network failure)."""
    global _disconnect_seen
    if not _DISCONNECT or name != _DISCONNECT:
        return False
    _disconnect_seen += 1
    return _disconnect_seen == _disconnect_target
