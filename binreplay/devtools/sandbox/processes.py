"""The OS side of a sandbox's server process: ports, pids, the parent-death signal, the handshake probe."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket as socketlib
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (the kernel picks it)."""
    with socketlib.socket(socketlib.AF_INET, socketlib.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def server_pid(pid_file: Path, datadir: Path) -> int | None:
    """The pid in `pid_file` if that process is still a server on `datadir`, whoever started it."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    # The pid file survives a kill, so check the pid is still our server.
    if _pid_alive(pid) and f"--datadir={datadir}" in _cmdline(pid):
        return pid
    return None


def die_with_parent() -> None:
    """preexec_fn: have the kernel SIGTERM the server if its parent dies.

    Keeps a SIGKILLed test runner from leaking servers. Note the signal is tied
    to the *thread* that started the server.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def greets(socket_path: Path) -> bool:
    """True once a server sends its handshake on the unix socket.

    Probing with a raw socket, not pymysql: a pymysql connect that fails
    half-way (the server is still starting) leaks its socket.
    """
    try:
        with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(socket_path))
            header = sock.recv(5)
    except OSError:
        return False
    # 3-byte length, sequence id, then protocol version 10 (an error packet has 0xff).
    return len(header) == 5 and header[4] == 10
