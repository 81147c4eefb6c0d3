"""The MariaDB server binaries a sandbox runs: where they are, and bootstrapping a datadir with them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SERVER_BINARIES = ("mariadbd", "mariadb-install-db")
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _which(name: str) -> str | None:
    """shutil.which, also looking in sbin dirs (not on PATH for non-root users)."""
    extra = os.pathsep.join(_SBIN_DIRS)
    return shutil.which(name) or shutil.which(name, path=extra)


def ensure_server_binaries() -> None:
    """Raise RuntimeError with an install hint when the server binaries are missing."""
    for binary in SERVER_BINARIES:
        if _which(binary) is None:
            raise RuntimeError(f"{binary} not found: apt-get install mariadb-server")


def server_binary(name: str) -> str:
    path = _which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: apt-get install mariadb-server")
    return path


def root_flags() -> list[str]:
    # mariadbd and its bootstrap refuse to run as root unless told to.
    return ["--user=root"] if os.geteuid() == 0 else []


def install_datadir(datadir: Path, sandbox_name: str) -> None:
    """Create a fresh datadir with mariadb-install-db (root without a password, no test db)."""
    # Its own temporary directory: two bootstraps at once in the shared /tmp were seen to fail
    # ("Could not remove temporary table '/tmp/#sql-temptable-...'", then Unknown table mysql.tmp_user_sys).
    tmpdir = datadir.parent / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        server_binary("mariadb-install-db"), "--no-defaults",
        f"--datadir={datadir}", f"--tmpdir={tmpdir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db", "--skip-name-resolve",
        # Same redo size as at runtime, so the first start skips a resize.
        "--innodb-log-file-size=64M",
        *root_flags(),
    ]
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"mariadb-install-db failed for sandbox {sandbox_name} ({result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
