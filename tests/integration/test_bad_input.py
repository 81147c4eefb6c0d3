"""Bad input: one clear line, a documented exit code, and nothing half-applied."""

from __future__ import annotations

from pathlib import Path

from binreplay.errors import ExitCode

from helpers import assert_same_content, binlogs_from, run_binreplay
from replays import BASE, one_line_error, run_on, setup_backup, users_on


def _prepared(clean_servers, n: int = 20):
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('b{i}', 'x', {i})" for i in range(n)])
    return source, target, start, binlogs_from(source, start[0])




def test_missing_file_and_not_a_binlog(clean_servers, tmp_path: Path) -> None:
    source, target, start, files = _prepared(clean_servers)
    r = run_binreplay("replay", str(tmp_path / "nope.000001"), *target.connection_flags(), "--progress", "none")
    one_line_error(r, ExitCode.BAD_INPUT, "not found", "nope.000001")
    junk = tmp_path / "junk.000001"
    junk.write_text("SELECT 1;\n")
    r = run_binreplay("replay", str(junk), *target.connection_flags(), "--progress", "none")
    one_line_error(r, ExitCode.BAD_INPUT, "not a binlog")
    assert users_on(target) == 3


def test_corrupt_checksum_applies_nothing(clean_servers, tmp_path: Path) -> None:
    source, target, start, files = _prepared(clean_servers)
    copy = tmp_path / Path(files[0]).name
    data = bytearray(Path(files[0]).read_bytes())
    data[len(data) - 200] ^= 0x55  # inside the last transactions
    copy.write_bytes(bytes(data))
    r = run_binreplay("replay", str(copy), *target.connection_flags(), "--start-position", str(start[1]),
                      "--progress", "none")
    one_line_error(r, ExitCode.BAD_INPUT, "checksum")
    assert users_on(target) == 3  # the preflight read refused before anything was committed
    assert not target.execute("SHOW DATABASES LIKE 'binreplay'")


def test_truncated_binlog_applies_every_complete_transaction(clean_servers, tmp_path: Path) -> None:
    source, target, start, files = _prepared(clean_servers)
    copy = tmp_path / Path(files[0]).name
    data = Path(files[0]).read_bytes()
    copy.write_bytes(data[:len(data) - 60])  # cuts into the last transaction (and drops the ROTATE)
    r = run_binreplay("replay", str(copy), *target.connection_flags(), "--start-position", str(start[1]),
                      "--progress", "json")
    assert r.returncode == 0, r.stderr
    assert "not applied" in r.stderr or "incomplete" in r.stderr
    assert users_on(target) == 3 + 19


def test_start_position_not_at_a_boundary(clean_servers) -> None:
    source, target, start, files = _prepared(clean_servers)
    r = run_binreplay("replay", files[0], *target.connection_flags(), "--start-position", str(start[1] + 7),
                      "--progress", "none")
    one_line_error(r, ExitCode.BAD_INPUT, "inside")
    assert users_on(target) == 3


def test_stop_before_start_is_a_usage_error(clean_servers) -> None:
    source, target, start, files = _prepared(clean_servers)
    r = run_binreplay("replay", files[0], *target.connection_flags(), "--start-position", str(start[1]),
                      "--stop-position", str(start[1] - 1), "--progress", "none")
    one_line_error(r, ExitCode.USAGE, "--stop-position")


def test_unreachable_target_and_wrong_password(clean_servers) -> None:
    source, target, start, files = _prepared(clean_servers)
    r = run_binreplay("replay", *files, "-h", "127.0.0.1", "-P", "1", "-u", "root", "--start-position",
                      str(start[1]), "--progress", "none")
    one_line_error(r, ExitCode.TARGET, "cannot connect", "127.0.0.1:1")
    target.execute("CREATE USER 'pw'@'localhost' IDENTIFIED BY 'right-secret'")
    r = run_binreplay("replay", *files, "-S", str(target.socket), "-u", "pw", "-pwrong-secret",
                      "--start-position", str(start[1]), "--progress", "none")
    one_line_error(r, ExitCode.TARGET, "access denied")
    assert "wrong-secret" not in r.stderr and "right-secret" not in r.stderr


def test_missing_binlog_replay_privilege_is_named(clean_servers) -> None:
    source, target, start, files = _prepared(clean_servers)
    target.execute("CREATE USER 'limited'@'localhost' IDENTIFIED BY 'pw'")
    target.execute("GRANT ALL ON app.* TO 'limited'@'localhost'")
    target.execute("GRANT ALL ON binreplay.* TO 'limited'@'localhost'")
    r = run_binreplay("replay", *files, "-S", str(target.socket), "-u", "limited", "--start-position",
                      str(start[1]), "--progress", "none", env={"MYSQL_PWD": "pw"})
    one_line_error(r, ExitCode.PRIVILEGE, "BINLOG REPLAY")
    assert users_on(target) == 3
    target.execute("REVOKE ALL ON binreplay.* FROM 'limited'@'localhost'")
    r = run_binreplay("replay", *files, "-S", str(target.socket), "-u", "limited", "--start-position",
                      str(start[1]), "--progress", "none", env={"MYSQL_PWD": "pw"})
    one_line_error(r, ExitCode.PRIVILEGE, "`binreplay`")
    target.execute("GRANT ALL ON binreplay.* TO 'limited'@'localhost'")
    target.execute("GRANT BINLOG REPLAY ON *.* TO 'limited'@'localhost'")
    r = run_binreplay("replay", *files, "-S", str(target.socket), "-u", "limited", "--start-position",
                      str(start[1]), "--progress", "none", env={"MYSQL_PWD": "pw"})
    assert r.returncode == 0, r.stderr
    assert_same_content(source, target)


def test_different_arguments_refuse_to_guess_until_restart(clean_servers) -> None:
    source, target, start, files = _prepared(clean_servers, n=5)
    r = run_binreplay("replay", *files, *target.connection_flags(), "--start-position", str(start[1]),
                      "--progress", "none")
    assert r.returncode == 0, r.stderr
    r = run_binreplay("replay", *files, *target.connection_flags(), "--progress", "none")
    one_line_error(r, ExitCode.STATE_CONFLICT, "--restart")


def test_usage_errors_exit_2(clean_servers) -> None:
    r = run_binreplay("replay")
    assert r.returncode == ExitCode.USAGE
    r = run_binreplay("replay", "x.000001", "--workers", "0")
    assert r.returncode == ExitCode.USAGE
    r = run_binreplay("replay", "x.000001", "--start-datetime", "yesterday-ish")
    assert r.returncode == ExitCode.USAGE


def test_compressed_mysql_transaction_is_refused_not_skipped(clean_servers) -> None:
    from data import BINLOGS as FIXTURES

    source, target = clean_servers
    fixture = FIXTURES / "mysql/mc-8.0.32-transaction-compression.000001"
    r = run_binreplay("replay", str(fixture), *target.connection_flags(), "--progress", "none")
    one_line_error(r, ExitCode.UNSUPPORTED, "TRANSACTION_PAYLOAD", "nothing was applied")
    assert not target.execute("SHOW DATABASES LIKE 'binreplay'")
    dry = run_binreplay("replay", str(fixture), "--dry-run")
    assert dry.returncode == 0 and "1 transactions would be applied" in dry.stderr


def test_password_is_not_in_the_process_list(clean_servers) -> None:
    import subprocess
    import sys
    import time

    source, target, start, files = _prepared(clean_servers, n=5)
    target.execute("CREATE USER 'pwuser'@'localhost' IDENTIFIED BY 'Sup3r-Secret'")
    target.execute("GRANT ALL ON *.* TO 'pwuser'@'localhost'")
    target.execute("SET GLOBAL innodb_lock_wait_timeout = 5")
    holder = target.connect()
    holder.cursor().execute("BEGIN")
    holder.cursor().execute("SELECT * FROM app.users FOR UPDATE")  # keeps the replay running a while
    proc = subprocess.Popen([sys.executable, "-m", "binreplay", "replay", *files, "-S", str(target.socket), "-u",
                             "pwuser", "-pSup3r-Secret", "--start-position", str(start[1]), "--progress", "none"],
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "binreplay" in cmdline and "Sup3r-Secret" not in cmdline, cmdline
    finally:
        holder.rollback()
        holder.close()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Sup3r-Secret" not in err
