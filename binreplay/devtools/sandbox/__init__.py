"""Throwaway local MariaDB servers for tests, the demo and benchmarks.

A sandbox is one ``mariadbd`` process whose every file lives under ``basedir``
(datadir, binlogs, socket, pid file, error log). It never reads a my.cnf
(``--no-defaults``), listens only on its own unix socket and a private
127.0.0.1 port, and so can run next to a system server and next to sandboxes
started by other processes.

Typical use::

    with create_sandbox(tmp / "src", name="src", log_bin=True) as src:
        src.execute("CREATE DATABASE d")

binaries.py  finding mariadbd and mariadb-install-db, and bootstrapping a datadir
processes.py the OS side: free ports, whose pid a pid file names, the handshake probe
server.py    the Sandbox: its files, start/stop/kill, client connections
"""

from binreplay.devtools.sandbox.binaries import SERVER_BINARIES, ensure_server_binaries
from binreplay.devtools.sandbox.server import Sandbox, create_sandbox

__all__ = ["SERVER_BINARIES", "Sandbox", "create_sandbox", "ensure_server_binaries"]
