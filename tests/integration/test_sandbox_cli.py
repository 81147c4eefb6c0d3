"""`binreplay sandbox start|stop|status`: a real mariadbd that outlives the command that started it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from binreplay.cli.sandbox import SandboxSettings

from helpers import assert_same_content, binlogs_from, run_binreplay
from replays import BASE, run_on, setup_backup

_SOCKET = re.compile(r"socket: (-S (\S+) -u root)")
_TCP = re.compile(r"tcp:\s+(-h 127\.0\.0\.1 -P (\d+) -u root)")


def sandbox(*args: str) -> tuple[int, str, str]:
    result = run_binreplay("sandbox", *args, timeout=120)
    return result.returncode, result.stdout, result.stderr


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "mariadbd" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()


def status(root: Path) -> dict[str, dict]:
    code, out, err = sandbox("status", "--dir", str(root), "--format", "json")
    assert code == 0, err
    return {s["name"]: s for s in json.loads(out)}


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Iterator[Path]:
    """A sandbox directory whose servers are stopped whatever the test does (they outlive their starter)."""
    root = tmp_path / "sb"
    yield root
    for name, state in status(root).items():
        if state["running"]:
            sandbox("stop", name, "--dir", str(root))


def test_start_connect_replay_stop(clean_servers, sandbox_dir: Path) -> None:
    source, _ = clean_servers
    code, out, err = sandbox("start", "restore", "--dir", str(sandbox_dir), "--no-log-bin", "--server-id", "7")
    assert code == 0, err
    socket_flags, socket_path = _SOCKET.search(out).groups()
    tcp_flags, port = _TCP.search(out).groups()
    assert Path(socket_path).is_socket()

    # The starting process has exited; the server answers on both printed addresses.
    for params in ({"unix_socket": socket_path}, {"host": "127.0.0.1", "port": int(port)}):
        with pymysql.connect(user="root", **params) as conn, conn.cursor() as cur:
            cur.execute("SELECT @@server_id, @@log_bin")
            assert cur.fetchone() == (7, 0)

    # A restore into it with the printed flags: backup, source changes, replay over TCP, same content.
    restored = SandboxSettings.load(sandbox_dir / "restore").sandbox((sandbox_dir / "restore").resolve())
    start = setup_backup(source, restored, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('s{i}@x', 'n{i}', {i})" for i in range(50)]
           + ["UPDATE app.users SET score = score * 2 WHERE id % 3 = 0", "DELETE FROM app.users WHERE id = 2"])
    result = run_binreplay("replay", *binlogs_from(source, start[0]), *tcp_flags.split(),
                           "--start-position", str(start[1]), "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert_same_content(source, restored, ["app"])
    status_text = run_binreplay("status", *socket_flags.split()).stdout  # the socket flags reach it too
    assert "the last run finished" in status_text

    # Starting it again only reports it; asking for other settings is a clear usage error.
    code, again, err = sandbox("start", "restore", "--dir", str(sandbox_dir))
    assert code == 0, err
    assert "already running" in again and f"-P {port} " in again
    code, _, err = sandbox("start", "restore", "--dir", str(sandbox_dir), "--server-id", "8")
    assert code == 2
    assert "already running with other settings: --server-id (running with 7)" in err

    state = status(sandbox_dir)["restore"]
    assert state["running"] and state["port"] == int(port) and not state["log_bin"]
    pid = state["pid"]
    assert pid_alive(pid)

    code, out, err = sandbox("stop", "restore", "--dir", str(sandbox_dir))
    assert code == 0, err
    assert out.strip() == "sandbox restore: stopped"
    assert not pid_alive(pid)
    assert status(sandbox_dir)["restore"]["running"] is False
    code, out, _ = sandbox("stop", "restore", "--dir", str(sandbox_dir))
    assert code == 0 and "was not running" in out


def test_restart_keeps_data_then_purge(sandbox_dir: Path) -> None:
    env_dir = {"BINREPLAY_SANDBOX_DIR": str(sandbox_dir)}  # the default directory comes from the environment
    result = run_binreplay("sandbox", "start", "scratch", env=env_dir, timeout=120)
    assert result.returncode == 0, result.stderr
    first_port = int(_TCP.search(result.stdout).group(2))
    assert "binlog: " in result.stdout  # --log-bin is the default
    sock = _SOCKET.search(result.stdout).group(2)
    with pymysql.connect(unix_socket=sock, user="root", autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE kept")
        cur.execute("CREATE TABLE kept.t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO kept.t VALUES (1), (2)")
    assert run_binreplay("sandbox", "stop", "scratch", env=env_dir).returncode == 0

    result = run_binreplay("sandbox", "start", "scratch", env=env_dir, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "scratch started" in result.stdout
    assert int(_TCP.search(result.stdout).group(2)) == first_port  # the port was still free: kept
    with pymysql.connect(unix_socket=sock, user="root") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM kept.t")
        assert cur.fetchone() == (2,)
        cur.execute("SELECT @@log_bin")  # not in the same SELECT: MariaDB returns 0 for it next to COUNT(*)
        assert cur.fetchone() == (1,)

    pid = status(sandbox_dir)["scratch"]["pid"]
    result = run_binreplay("sandbox", "stop", "scratch", "--purge", env=env_dir)
    assert result.returncode == 0, result.stderr
    assert not pid_alive(pid)
    assert not (sandbox_dir / "scratch").exists()
    assert run_binreplay("sandbox", "status", env=env_dir).stdout.strip() == f"no sandboxes under {sandbox_dir}"


def test_bad_names_and_unknown_sandboxes(tmp_path: Path) -> None:
    code, _, err = sandbox("start", "no/slash", "--dir", str(tmp_path))
    assert code == 2 and "sandbox name must match" in err
    code, _, err = sandbox("stop", "ghost", "--dir", str(tmp_path))
    assert code == 2 and f"no sandbox ghost under {tmp_path.resolve()}" in err
    assert not any(tmp_path.iterdir())
