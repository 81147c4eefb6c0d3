"""Which errors say "rerun the same command to resume": only those a rerun can get past (issue 14, item 6)."""

from __future__ import annotations

import pytest

from binreplay.errors import ExitCode, RejectedError, TargetError, TargetStateError, advice, rejected_error


@pytest.mark.parametrize("code", [1062, 1032, 1007, 1050, 1146, 1452])
def test_a_target_that_contradicts_the_binlog_is_not_told_to_rerun(code: int) -> None:
    error = rejected_error(code)("the target rejected ...")
    assert isinstance(error, TargetStateError) and error.exit_code == ExitCode.TARGET
    assert "rerun the same command" not in advice(error)
    assert "--from-backup" in advice(error) and "restore the backup again" in advice(error)


@pytest.mark.parametrize("code", [1114, 1021, 1290, 1317, 1153])
def test_a_server_condition_once_fixed_resumes(code: int) -> None:
    error = rejected_error(code)("the target rejected ...")
    assert type(error) is TargetError and "rerun the same command to resume" in advice(error)


def test_a_statement_refused_for_itself_fails_the_same_way_again() -> None:
    error = rejected_error(1064)("syntax")
    assert isinstance(error, RejectedError) and not isinstance(error, TargetStateError)
    assert advice(error) == "; a rerun fails the same way until the target or the command changes"
