#!/usr/bin/env python3
"""Run a command, wait4 it, and write its own resource usage as JSON.

    python benchmarks/rusage_launcher.py OUT.json -- COMMAND [ARG...]

Why a launcher: on Linux a process's ru_maxrss starts, at exec, at the peak RSS of the memory
image it had before the exec, i.e. the forking parent's. binreplay spawned straight from the
benchmark (which holds sandboxes' state, read binlogs, ...) would report at least the
benchmark's own RSS. This launcher is a bare interpreter of ~14 MB, so the command's ru_maxrss
is the command's (or 14 MB, far below any binreplay run). Checked: `python -c pass` spawned by a
process holding 400 MB reports 413 MB; through this launcher, 14 MB.

OUT.json: seconds (wall, spawn to exit), returncode, cpu_s (user+sys), maxrss_kb, anon_kb
(peak RssAnon, sampled every 20 ms: ru_maxrss also counts file pages the command touched).
The exit status is the command's. SIGINT is left to the command (it shares the terminal's
process group) and ignored here, so the usage is still written when it stops.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time


def sample_anon(pid: int, peak: list[int]) -> None:
    """peak[0] = the largest RssAnon (kB) seen in /proc/PID/status until the process exits."""
    path = f"/proc/{pid}/status"
    while True:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return
        if "State:\tZ" in text:       # exited, not yet reaped
            return
        for line in text.splitlines():
            if line.startswith("RssAnon:"):
                peak[0] = max(peak[0], int(line.split()[1]))
        time.sleep(0.02)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, cmd = argv[0], argv[2:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    t0 = time.monotonic()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ, setsigdef=(signal.SIGINT,))
    peak = [0]
    sampler = threading.Thread(target=sample_anon, args=(pid, peak), daemon=True)
    sampler.start()
    _pid, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - t0
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as f:
        json.dump({"seconds": seconds, "returncode": code, "cpu_s": usage.ru_utime + usage.ru_stime,
                   "maxrss_kb": usage.ru_maxrss, "anon_kb": peak[0]}, f)
    return code if code >= 0 else 128 - code     # killed by signal N: 128+N, as a shell reports it


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
