"""Issue 14 item 8, as an operator meets it: the connection flags behave like the mysql client's.

`-p` without a value asks on the terminal (and never takes the next argument as the password);
`-pSECRET` and `--password=SECRET` still work; option files: `!include`/`!includedir`, ~/.my.cnf and
--defaults-extra-file in the client's order; the source connection never takes the target's MYSQL_PWD.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from binreplay.errors import ExitCode

from helpers import assert_same_content, binlogs_from, run_binreplay
from replays import BASE, run_on, setup_backup

SECRET = "se#cr3t 'x'"     # a comment sign, a space and quotes: option files must quote it


def _user_with_password(target) -> None:
    target.execute("CREATE USER 'pwuser'@'localhost' IDENTIFIED BY %s", SECRET)
    target.execute("GRANT ALL ON *.* TO 'pwuser'@'localhost'")


def _on_terminal(args: list[str], answer: str, timeout: float = 120) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its controlling terminal; answer the password prompt."""
    pid, fd = pty.fork()
    if pid == 0:   # the child: the pty is its terminal (stdin, stdout, stderr and /dev/tty)
        os.execv(sys.executable, [sys.executable, "-m", "binreplay", *args])
    output, answered = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:    # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"Enter password: " in output:
                os.write(fd, answer.encode() + b"\n")
                answered = True
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"no end within {timeout} s: {output!r}")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_p_without_value_asks_on_the_terminal_and_keeps_the_next_argument(clean_servers) -> None:
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('p{i}', 'x', {i})" for i in range(5)])
    files = binlogs_from(source, start[0])
    _user_with_password(target)
    # `-p` right before the first binlog: that file is a binlog, not the password.
    code, out = _on_terminal(["replay", "-S", str(target.socket), "-u", "pwuser", "-p", *files,
                              "--start-position", str(start[1]), "--progress", "plain"], SECRET)
    assert code == 0, out
    assert "Enter password: " in out and SECRET not in out, out   # asked, and not echoed
    assert "binreplay: complete: 5 transactions applied" in out, out
    assert_same_content(source, target)


def test_p_without_value_and_no_terminal_is_a_usage_error(clean_servers) -> None:
    _, target = clean_servers
    r = subprocess.run([sys.executable, "-m", "binreplay", "status", "-S", str(target.socket), "-p"],
                       capture_output=True, text=True, timeout=60, start_new_session=True,  # no terminal
                       stdin=subprocess.DEVNULL)
    assert r.returncode == ExitCode.USAGE, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("binreplay: error: -p without a value asks for the password "
                                                   "on a terminal"), r.stderr


def test_attached_passwords_still_work(clean_servers) -> None:
    _, target = clean_servers
    _user_with_password(target)
    for flag in (f"-p{SECRET}", f"--password={SECRET}"):
        r = run_binreplay("status", "-S", str(target.socket), "-u", "pwuser", flag)
        assert r.returncode == 0, (flag, r.stderr)
    r = run_binreplay("status", "-S", str(target.socket), "-u", "pwuser", "--password=wrong")
    assert r.returncode == ExitCode.TARGET and "access denied" in r.stderr, r.stderr


def _cnf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_file_follows_include_and_includedir(clean_servers, tmp_path: Path) -> None:
    _, target = clean_servers
    _user_with_password(target)
    quoted = SECRET.replace("'", "\\'")
    _cnf(tmp_path / "conf.d" / "50-password.cnf", f"[client]\npassword = '{quoted}'  # the user's\n")
    _cnf(tmp_path / "conf.d" / "README", "[client]\npassword = not-a-cnf-file\n")   # not *.cnf: not read
    _cnf(tmp_path / "user.cnf", "[mysql]\nuser = pwuser\n")
    main = _cnf(tmp_path / "my.cnf", f"# comment\n[client]\nuser = nobody\nsocket = {target.socket}\n"
                                     f"!include {tmp_path / 'user.cnf'}\n!includedir {tmp_path / 'conf.d'}\n")
    r = run_binreplay("status", f"--defaults-file={main}")
    assert r.returncode == 0, r.stderr
    loop = _cnf(tmp_path / "loop.cnf", "[client]\n!include loop.cnf\n")
    r = run_binreplay("status", "--defaults-file", str(loop))
    assert r.returncode == ExitCode.USAGE and r.stderr.count("\n") == 1 and "includes itself" in r.stderr, r.stderr


def test_user_my_cnf_and_defaults_extra_file_in_the_client_order(clean_servers, tmp_path: Path) -> None:
    _, target = clean_servers
    _user_with_password(target)
    home = tmp_path / "home"
    quoted = SECRET.replace("'", "\\'")
    _cnf(home / ".my.cnf", f"[client]\nuser = pwuser\npassword = '{quoted}'\n")
    env = {"HOME": str(home)}
    sock = ["-S", str(target.socket)]
    assert run_binreplay("status", *sock, env=env).returncode == 0                     # ~/.my.cnf read
    extra = _cnf(tmp_path / "extra.cnf", "[client]\npassword = wrong\n")
    # The extra file comes before ~/.my.cnf, so the user's file decides.
    r = run_binreplay("status", *sock, "--defaults-extra-file", str(extra), env=env)
    assert r.returncode == 0, r.stderr
    # --defaults-file replaces ~/.my.cnf: its user alone, without the password, is refused.
    only = _cnf(tmp_path / "only.cnf", "[client]\nuser = pwuser\n")
    r = run_binreplay("status", *sock, "--defaults-file", str(only), env=env)
    assert r.returncode == ExitCode.TARGET and "access denied for user 'pwuser'" in r.stderr, r.stderr
    r = run_binreplay("status", *sock, "--defaults-extra-file", str(tmp_path / "missing.cnf"), env=env)
    assert r.returncode == ExitCode.USAGE and "--defaults-extra-file not found" in r.stderr, r.stderr


def test_source_connection_never_takes_the_targets_mysql_pwd(clean_servers, tmp_path: Path) -> None:
    source, _ = clean_servers
    source.execute("CREATE USER 'fetcher'@'localhost' IDENTIFIED BY 'src-pw'")
    source.execute("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'fetcher'@'localhost'")
    flags = ["fetch", "--source-socket", str(source.socket), "--source-user", "fetcher",
             "--out", str(tmp_path / "spool")]
    r = run_binreplay(*flags, env={"MYSQL_PWD": "src-pw"})
    assert r.returncode == ExitCode.SOURCE and "access denied for user 'fetcher'" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    r = run_binreplay(*flags, "--source-password=src-pw", env={"MYSQL_PWD": "target-pw"})
    assert r.returncode == 0, r.stderr
