"""The mysql client's option files (server/option_files.py), `-p` without a value (cli/options.py), and
the wait for a target that went away (server/reconnect.py), without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from binreplay.cli.options import ASK_PASSWORD, password_prompt_arguments
from binreplay.errors import Interrupted, TargetError, TargetUnreachable, UsageError
from binreplay.server import reconnect
from binreplay.server.connection import ServerConfig
from binreplay.server.option_files import OptionFile, client_options, option_files
from binreplay.server.reconnect import OutageNotice, Reconnector


def test_p_alone_is_asked_for_and_never_takes_the_next_argument() -> None:
    args = ["replay", "-p", "bin.000001", "--source-password", "--password=x", "-py", "--", "-p"]
    assert password_prompt_arguments(args) == [
        "replay", f"--password={ASK_PASSWORD}", "bin.000001", f"--source-password={ASK_PASSWORD}",
        "--password=x", "-py", "--", "-p"]


def test_option_file_format(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.cnf").write_text("[client]\nuser = from-b\n")
    (tmp_path / "d" / "a.cnf").write_text("[client]\nuser = from-a\nport=3307\n")
    (tmp_path / "d" / "c.txt").write_text("[client]\nuser = not-read\n")
    (tmp_path / "inc.cnf").write_text("[mysqld]\nuser = server-only\n[mysql]\nhost = h1 # comment\n")
    main = tmp_path / "my.cnf"
    main.write_text("; comment\n[client]\npassword = \"a#b\\\\c\\sd\"\nsocket\n!include inc.cnf\n"
                    f"!includedir {tmp_path / 'd'}\n")
    values = client_options([OptionFile(main, "--defaults-file")])
    assert values == {"password": "a#b\\c d", "socket": None, "host": "h1", "user": "from-b", "port": "3307"}


@pytest.mark.parametrize("text, message", [
    ("user = x\n", "an option before any [group]"),
    ("[client\n", "must end with ']'"),
    ("[client]\npassword = 'open\n", "unterminated quoted value"),
    ("[client]\n!include nowhere.cnf\n", "included file not found"),
    ("[client]\n!include my.cnf\n", "includes itself"),
])
def test_bad_option_files_are_usage_errors_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "my.cnf"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        client_options([OptionFile(path, "--defaults-file")])
    assert message in str(info.value) and f"{path}:" in str(info.value)


def test_which_files_and_in_which_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    user = tmp_path / ".my.cnf"
    assert [f.path for f in option_files(None, "x.cnf", user_files=True)][-2:] == [Path("x.cnf"), user]
    assert [f.path for f in option_files("d.cnf", "x.cnf", user_files=True)] == [Path("d.cnf"), Path("x.cnf")]
    assert option_files(None, None, user_files=False) == []


def test_a_second_server_never_takes_mysql_pwd_or_the_users_files(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MYSQL_PWD", "target-pw")
    (tmp_path / ".my.cnf").write_text("[client]\nuser = me\n")
    assert ServerConfig(socket="/s").resolved().password == "target-pw"
    assert ServerConfig(socket="/s").resolved().user == "me"
    second = ServerConfig(socket="/s", user_defaults=False).resolved()
    assert second.password is None and second.user is None


def test_a_files_socket_does_not_override_a_tcp_host(tmp_path: Path) -> None:
    path = tmp_path / "my.cnf"
    path.write_text("[client]\nsocket = /run/x.sock\n")
    assert ServerConfig(host="db2", defaults_file=str(path)).resolved().socket is None
    assert ServerConfig(defaults_file=str(path)).resolved().socket == "/run/x.sock"


class _Flaky:
    """Unreachable `failures` times, then connected."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self) -> str:
        if self.failures:
            self.failures -= 1
            raise TargetUnreachable("cannot connect to target socket /s: refused")
        return "connected"


def test_reconnector_waits_shows_the_wait_and_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconnect, "RETRY_EVERY_S", 0.01)
    shown: list[OutageNotice] = []
    r = Reconnector(timeout_s=60, notify=shown.append)
    assert r.call(_Flaky(3)) == "connected"
    assert [n.state for n in shown] == ["lost", "waiting", "back"]
    assert "waiting up to 60 s" in shown[0].message and "refused" in shown[0].message
    assert shown[-1].message.startswith("the target is back after")


def test_reconnector_gives_up_after_the_timeout_and_then_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconnect, "RETRY_EVERY_S", 0.01)
    r = Reconnector(timeout_s=0.05)
    with pytest.raises(TargetError, match="longer than --reconnect-timeout 0.05: cannot connect") as info:
        r.call(_Flaky(10_000))
    assert info.type is TargetError
    attempt = _Flaky(1)
    with pytest.raises(TargetError):       # the run is ending: no second wait
        r.call(attempt)
    assert attempt.failures == 0


def test_reconnector_stops_waiting_on_a_signal_and_passes_other_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconnect, "RETRY_EVERY_S", 0.01)
    r = Reconnector(timeout_s=60)
    r.stop_waiting()
    with pytest.raises(Interrupted):
        r.call(_Flaky(5))

    def refused() -> None:
        raise TargetError("access denied")

    with pytest.raises(TargetError, match="access denied"):
        Reconnector(timeout_s=60).call(refused)
