"""Typed errors and the exit codes they map to.

Every failure a user can cause or meet is one of these classes; the CLI turns
it into a one-line message and the documented exit code (README "Exit codes").
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1          # a bug: please report it
    USAGE = 2             # bad flags or flag combination (click uses 2 as well)
    BAD_INPUT = 3         # binlog files or bounds are wrong (missing, corrupt, truncated, bad position)
    TARGET = 4            # target unreachable, authentication failed, or a statement failed
    PRIVILEGE = 5         # the target user lacks a privilege binreplay needs
    STATE_CONFLICT = 6    # the target's progress records disagree with this run (use --restart)
    UNSUPPORTED = 7       # valid input that binreplay cannot apply exactly (yet)
    DIFFERENT = 8         # verify: the target's content differs from the reference server
    SCHEMA_MISMATCH = 9   # the target's tables do not match the binlog's (not restored from the right backup?)
    INTERRUPTED = 130     # stopped by a signal; rerun the same command to resume


class BinreplayError(Exception):
    """Base class: carries the exit code the CLI should use."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(BinreplayError):
    exit_code = ExitCode.USAGE


class BadInputError(BinreplayError):
    exit_code = ExitCode.BAD_INPUT


class ChecksumError(BadInputError):
    pass


class TruncatedError(BadInputError):
    pass


class PositionError(BadInputError):
    pass


class TargetError(BinreplayError):
    exit_code = ExitCode.TARGET


class PrivilegeError(TargetError):
    exit_code = ExitCode.PRIVILEGE


class SourceError(BinreplayError):
    """The live source (--source-host, fetch) is unreachable or was lost for too long: like the
    target, exit 4, and rerunning resumes."""

    exit_code = ExitCode.TARGET


class StateConflictError(BinreplayError):
    exit_code = ExitCode.STATE_CONFLICT


class UnsupportedError(BinreplayError):
    exit_code = ExitCode.UNSUPPORTED


class DifferenceFound(BinreplayError):
    exit_code = ExitCode.DIFFERENT


class SchemaMismatchError(BinreplayError):
    exit_code = ExitCode.SCHEMA_MISMATCH


class Interrupted(BinreplayError):
    exit_code = ExitCode.INTERRUPTED
