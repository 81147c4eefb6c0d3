#!/usr/bin/env python3
"""A TCP forwarder that makes a local server look remote: a fixed delay each way, nothing else.

    python benchmarks/delay_proxy.py --target-port 3306 [--delay-ms 0.5] [--listen-port 0]

Listens on 127.0.0.1 only and forwards every accepted connection to 127.0.0.1:<target-port>.
Each chunk read from one side is stamped with the time it arrived and written to the other side
at arrival + delay, in arrival order. Reading and writing are separate threads per direction,
so a connection that pipelines (sends the next request before the previous answer arrives) is
never held back to one exchange per round trip: the link has latency, not a throughput limit.
The first line printed is `listening on 127.0.0.1:<port>`; SIGTERM or SIGINT stop it.

Why threads and not asyncio: asyncio's timers go through epoll_wait, whose timeout is in whole
milliseconds, so a 0.5 ms delay would come out as ~1 ms; time.sleep uses clock_nanosleep.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

CHUNK = 256 * 1024
_EOF = b""
_PR_SET_TIMERSLACK = 29


def _precise_sleeps() -> None:
    """Ask for 1 us timer slack (default 50 us) for this thread and the threads it creates.

    Measured here: time.sleep(0.0005) took a median 558 us with the default slack, 507 us with this.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)
    except OSError:
        pass     # not Linux: sleeps are a little longer, the measured round trip shows it


class _Direction:
    """One direction of one connection: a reader thread stamps chunks, a writer thread delivers them late."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay_s: float, on_done: Callable[[], None]) -> None:
        self.src, self.dst, self.delay_s = src, dst, delay_s
        self.chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        self.on_done = on_done
        self.threads = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._write, daemon=True)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.src.recv(CHUNK)
            except OSError:
                data = _EOF
            # Stamped on arrival: a chunk waiting in the queue behind others is not delayed twice.
            self.chunks.put((time.monotonic() + self.delay_s, data))
            if not data:
                return

    def _write(self) -> None:
        try:
            while True:
                due, data = self.chunks.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    self.dst.shutdown(socket.SHUT_WR)   # pass the half-close on, like a real link
                    return
                self.dst.sendall(data)
        except OSError:
            pass
        finally:
            self.on_done()


class _Connection:
    def __init__(self, client: socket.socket, server: socket.socket, delay_s: float) -> None:
        self.sockets = (client, server)
        self.pending = 2
        self.lock = threading.Lock()
        self.directions = [_Direction(client, server, delay_s, self._direction_done),
                           _Direction(server, client, delay_s, self._direction_done)]

    def start(self) -> None:
        for d in self.directions:
            d.start()

    def _direction_done(self) -> None:
        with self.lock:
            self.pending -= 1
            last = self.pending == 0
        if last:
            self.close()

    def close(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()


class DelayProxy:
    """Forward 127.0.0.1:<listen_port> to <target_host>:<target_port>, `delay_s` seconds each way."""

    def __init__(self, target_port: int, delay_s: float, *, listen_port: int = 0,
                 target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.connections: list[_Connection] = []

    def serve_forever(self) -> None:
        _precise_sleeps()     # before the connection threads are created: they inherit it
        while True:
            try:
                client, _addr = self.listener.accept()
            except OSError:
                return          # closed
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                # Small MySQL packets must leave at once: Nagle would add its own, larger delay.
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(client, server, self.delay_s)
            self.connections.append(conn)
            conn.start()

    def close(self) -> None:
        self.listener.close()
        for c in self.connections:
            c.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target-port", type=int, required=True, help="the server's TCP port on 127.0.0.1")
    ap.add_argument("--delay-ms", type=float, default=0.5, help="delay added to each direction (default 0.5)")
    ap.add_argument("--listen-port", type=int, default=0, help="port to listen on (default: a free one)")
    args = ap.parse_args(argv)
    proxy = DelayProxy(args.target_port, args.delay_ms / 1000, listen_port=args.listen_port)

    def stop(_signum: int, _frame: object) -> None:
        proxy.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on 127.0.0.1:{proxy.port}", flush=True)
    proxy.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
