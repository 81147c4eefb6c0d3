"""End to end against docker-compose.yml's MySQL 8.4 pair (skipped where Docker does not run)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _docker_usable() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not _docker_usable(), reason="no usable Docker engine on this machine")]


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), *args],
                          capture_output=True, text=True, check=True, timeout=600)


def _sql(service: str, sql: str) -> str:
    return _compose("exec", "-T", service, "mysql", "-uroot", "-pbinreplay", "-N", "-e", sql).stdout


def test_mysql84_rows_replay_into_mysql84() -> None:
    _compose("up", "-d", "--wait", "mysql-source", "mysql-target")
    try:
        _sql("mysql-source", "RESET BINARY LOGS AND GTIDS; CREATE DATABASE d; "
                             "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20), j JSON)")
        _sql("mysql-source", "INSERT INTO d.t VALUES (1,'a','{\"x\":1}'),(2,'b',NULL); UPDATE d.t SET v='c' "
                             "WHERE id=2; FLUSH BINARY LOGS")
        with tempfile.TemporaryDirectory() as tmp:
            _compose("cp", "mysql-source:/var/lib/mysql/binlog.000001", f"{tmp}/binlog.000001")
            r = subprocess.run([sys.executable, "-m", "binreplay", "replay", f"{tmp}/binlog.000001", "-h",
                                "127.0.0.1", "-P", "3408", "-u", "root", "--progress", "none"],
                               capture_output=True, text=True,
                               env={"MYSQL_PWD": "binreplay", "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
        query = "SELECT * FROM d.t ORDER BY id"
        assert _sql("mysql-source", query) == _sql("mysql-target", query)
    finally:
        _compose("down", "-v")
