"""Every failure binreplay can meet, and the one place that classifies server errors.

A failure a user can cause or meet is one of the `BinreplayError` classes below; the CLI turns it
into one line on stderr and the class's documented exit code (docs/exit-codes.md). Anything else
reaching the CLI is a bug: exit 1, with the traceback in the log.

Errors from a MySQL/MariaDB server (pymysql exceptions) are classified here and nowhere else
(`classify`), by their error number:

    LOST       the session is gone (killed, timed out, server restarted): reconnect, then redo what
               is safe to redo (a COMMIT's outcome is looked up, never guessed)
    RETRY      a deadlock or a lock wait timeout: roll back and retry with backoff
    PRIVILEGE  the user lacks a privilege: say which one
    CORRUPT    the server found a binlog event (or, --apply sql, a row value) corrupt: bad input (exit 3),
               naming the source transaction that carried it (the binlog is damaged, not the target)
    REFUSED    anything else: the statement was rejected; `refusal` says whether a rerun can succeed (the
               server's condition, once fixed) or fails the same way (the target's data contradicts the
               binlog: wrong backup or start point; or the statement itself)
"""

from __future__ import annotations

import enum
from typing import Any

import pymysql


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1          # a bug: please report it
    USAGE = 2             # bad flags or flag combination (click uses 2 as well)
    BAD_INPUT = 3         # binlog files or bounds are wrong (missing, corrupt, truncated, bad position)
    TARGET = 4            # target unreachable, authentication failed, or a statement failed
    PRIVILEGE = 5         # a server user lacks a privilege binreplay needs
    STATE_CONFLICT = 6    # the target's progress records disagree with this run (use --restart)
    UNSUPPORTED = 7       # valid input that binreplay cannot apply exactly (yet)
    DIFFERENT = 8         # verify: the target's content differs from the reference server
    SCHEMA_MISMATCH = 9   # the target's tables do not match the binlog's (not restored from the right backup?)
    SOURCE = 10           # the live source (--source-host, fetch) unreachable or lost for too long
    PAST_STOP = 11        # the target already holds transactions after the requested stop point
    STOP_NOT_REACHED = 12  # no event of the binlogs reaches --stop-datetime (unless --allow-unreached-stop)
    SAME_SERVER = 13      # the target is the server that wrote the binlogs (refused unless forced)
    INTERRUPTED = 130     # stopped by a signal; rerun the same command to resume


class BinreplayError(Exception):
    """Base class: carries the exit code the CLI uses, and whether rerunning the same command
    resumes. The CLI adds that advice to the error line (`advice`); messages never carry it.
    `remedy` is what to do instead when a rerun would fail the same way."""

    exit_code: ExitCode = ExitCode.INTERNAL
    resumable: bool = False
    advice_text = "rerun the same command to resume"
    remedy = ""

    def __init__(self, message: str = "", *, resumable: bool | None = None) -> None:
        super().__init__(message)
        if resumable is not None:
            self.resumable = resumable


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
    resumable = True
    advice_text = "what was applied is recorded: rerun the same command to resume"


class TargetUnreachable(TargetError):
    """The target could not be reached (refused, no socket, lost in the handshake, shutting down):
    a run waits for it (server/reconnect.py) before giving up."""


class RejectedError(TargetError):
    """The target refused a source transaction for a reason a rerun meets again (`refusal`)."""

    resumable = False
    remedy = "a rerun fails the same way until the target or the command changes"


class TargetStateError(RejectedError):
    """The target's data or schema is not what the transaction expects (a duplicate key, a table or
    database that exists or is missing): the target is not the state these binlogs continue from."""

    remedy = ("the target is not in the state these binlogs continue from: was it restored from the backup they "
              "follow, and does the replay start at that backup's coordinates (--from-backup)? A rerun fails the "
              "same way: restore the backup again, then replay from its coordinates")


class PrivilegeError(TargetError):
    exit_code = ExitCode.PRIVILEGE
    resumable = False


class SourceError(BinreplayError):
    """The live source (--source-host, fetch) is unreachable or was lost for too long; rerunning resumes."""

    exit_code = ExitCode.SOURCE
    resumable = True
    advice_text = "rerun the same command to resume (what was fetched is kept)"


class StateConflictError(BinreplayError):
    exit_code = ExitCode.STATE_CONFLICT


class UnsupportedError(BinreplayError):
    exit_code = ExitCode.UNSUPPORTED


class DifferenceFound(BinreplayError):
    exit_code = ExitCode.DIFFERENT


class SchemaMismatchError(BinreplayError):
    exit_code = ExitCode.SCHEMA_MISMATCH


class PastStopError(BinreplayError):
    """The target's progress shows transactions applied beyond the stop point asked for: replaying
    cannot undo them (a rerun fails the same way; the backup must be restored again)."""

    exit_code = ExitCode.PAST_STOP


class StopNotReachedError(BinreplayError):
    """No event of the binlogs is at or after --stop-datetime: replaying them all would not be the
    point in time asked for (the later binlogs are missing, or the time is wrong)."""

    exit_code = ExitCode.STOP_NOT_REACHED


class SameServerError(BinreplayError):
    """The target has the server_id (MySQL: server_uuid) that wrote the binlogs: replaying a server's
    own binlogs into it would apply its transactions twice."""

    exit_code = ExitCode.SAME_SERVER


class Interrupted(BinreplayError):
    exit_code = ExitCode.INTERRUPTED
    resumable = True


def server_error(role: str) -> type[BinreplayError]:
    """The error class for a failure of the server in `role` ("target", "source", "reference")."""
    return SourceError if role == "source" else TargetError


# --- server errors --------------------------------------------------------------------------

class Fault(enum.Enum):
    LOST = "lost"
    RETRY = "retry"
    PRIVILEGE = "privilege"
    CORRUPT = "corrupt"
    REFUSED = "refused"


ER_ACCESS_DENIED = 1045                 # wrong user or password
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
ER_SOURCE_CANNOT_SERVE = 1236           # a binlog dump asked for a purged or unknown file/position
_LOST = frozenset({
    2006, 2013, 2055,                   # client: server gone away, lost during query, lost (TLS)
    1053,                               # the server is shutting down
    1927,                               # MariaDB: connection killed
    1158, 1159, 1160, 1161,             # network read/write error or timeout (replication stream)
})
_RETRY = frozenset({ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK})
_PRIVILEGE = frozenset({1044, 1045, 1142, 1227})   # db / user / table / specific access denied
# ER_ERROR_ON_WRITE, ER_GET_ERRNO (errno 28 = ENOSPC in the text), ER_DISK_FULL, ER_RECORD_FILE_FULL
_NO_SPACE = frozenset({3, 1030, 1021, 1114})
CANNOT_CONNECT = frozenset({2002, 2003, 2005})
# What MariaDB 10.11 answers a BINLOG statement whose (CRC-valid) event is damaged, seen when replaying
# mutated rows and TABLE_MAP events (tests/integration/test_corrupt_events.py): 1030 with error 171,
# 1105 and 1149; 1594 and 1610 are the server's own "corrupt event" errors (not seen there):
ER_GET_ERRNO = 1030                     # "Got error 171 "The event was corrupt ..." from storage engine"
HA_ERR_CORRUPT_EVENT = 171              # ... the handler error it carries
ER_UNKNOWN_ERROR = 1105                 # a rows event the server could not apply ("Unknown error")
ER_SYNTAX_ERROR = 1149                  # BINLOG: the server could not parse the decoded event at all
ER_SLAVE_RELAY_LOG_READ_FAILURE = 1594  # "Could not parse relay log event entry"
ER_SLAVE_CORRUPT_EVENT = 1610           # "Corrupted replication event was detected"
# Corrupt whatever statement got them:
_CORRUPT = frozenset({ER_SLAVE_RELAY_LOG_READ_FAILURE, ER_SLAVE_CORRUPT_EVENT})
# Corrupt when a BINLOG statement got them (from another statement they are the target's own failure):
_CORRUPT_IN_BINLOG = frozenset({ER_UNKNOWN_ERROR, ER_SYNTAX_ERROR})
# Corrupt when binreplay's own statements carrying row images got them (--apply sql; not a source's
# statement): a string value that is no text of its column's character set, which no server wrote
# (seen with --apply sql; BINLOG stores such bytes as they are).
ER_INVALID_CHARACTER_STRING = 1300
_CORRUPT_IN_ROWS = frozenset({ER_INVALID_CHARACTER_STRING})
# What the server's refusal of a source transaction means for a rerun (`refusal`). The target's data or
# schema contradicts the binlog: a duplicate key, a row event's row not found, a database/table/column/index
# that exists already or is missing, a foreign key violated. The target is not the state the binlogs
# continue from (wrong backup, wrong start point, or replayed twice), which no rerun changes.
_TARGET_STATE = frozenset({
    1062, 1586, 1022,                   # duplicate entry (with key name), can't write: duplicate key
    1032,                               # row not found (a row event's before image)
    1007, 1008, 1049,                   # database exists, can't drop (missing), unknown database
    1050, 1051, 1146,                   # table exists, unknown table (DROP), table doesn't exist
    1054, 1060, 1061, 1091,             # unknown column, duplicate column / key name, can't drop field or key
    1451, 1452,                         # foreign key: a child row exists, no parent row
})
# The server's condition refused it, not the transaction: once it is fixed a rerun resumes. Out of disk
# space (_NO_SPACE), read-only, a statement killed or past its time limit, too big a packet, out of memory.
_CONDITION = frozenset({1290, 1836, 1317, 1969, 3024, 1153, 1301, 1037, 1038, 1041, 1206, 1040, 1135}) | _NO_SPACE


class Refusal(enum.Enum):
    TARGET_STATE = "target state"       # the target is not what the binlog continues from: TargetStateError
    CONDITION = "condition"             # fix the server's condition, then rerun: TargetError (resumable)
    STATEMENT = "statement"             # the transaction itself is refused: a rerun fails the same way


def refusal(code: int) -> Refusal:
    """What a REFUSED error (classify) means for a rerun."""
    if code in _TARGET_STATE:
        return Refusal.TARGET_STATE
    return Refusal.CONDITION if code in _CONDITION else Refusal.STATEMENT


def rejected_error(code: int) -> type[TargetError]:
    """The error class for the target's refusal of a source transaction with this error number."""
    return {Refusal.TARGET_STATE: TargetStateError, Refusal.CONDITION: TargetError,
            Refusal.STATEMENT: RejectedError}[refusal(code)]


# Not here: 1677 ER_SLAVE_CONVERSION_FAILED (a column of another type) means a damaged TABLE_MAP as
# often as a target table of another definition, which is not bad input; it stays REFUSED (exit 4).


def error_code(exc: BaseException) -> int:
    """The server (or client library) error number of `exc`, 0 if it has none."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def classify(exc: BaseException, *, binlog_statement: bool = False, row_images: bool = False) -> Fault:
    """`binlog_statement`: `exc` answered a packet with a BINLOG statement in it; `row_images`: a packet
    of binreplay's statements that write the binlog's row images (BINLOG, or --apply sql's)."""
    if isinstance(exc, pymysql.err.InterfaceError):   # used after the socket was closed
        return Fault.LOST
    code = error_code(exc)
    if code == ER_GET_ERRNO and f"error {HA_ERR_CORRUPT_EVENT} " in first_line(exc):
        return Fault.CORRUPT
    if code in _CORRUPT or (binlog_statement and code in _CORRUPT_IN_BINLOG) or (
            (row_images or binlog_statement) and code in _CORRUPT_IN_ROWS):
        return Fault.CORRUPT
    return classify_code(code)


def classify_code(code: int) -> Fault:
    if code in _LOST:
        return Fault.LOST
    if code in _RETRY:
        return Fault.RETRY
    if code in _PRIVILEGE:
        return Fault.PRIVILEGE
    return Fault.REFUSED


def connection_lost(exc: BaseException) -> bool:
    return classify(exc) is Fault.LOST


def first_line(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    msg = args[1] if len(args) > 1 else str(exc)
    return str(msg).splitlines()[0] if msg else type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line for a server error: its number and first line, and what a full disk means."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) > 1:
        text = f"error {args[0]}: {first_line(exc)}"
        if args[0] in _NO_SPACE and (args[0] in (1021, 1114) or "28" in str(args[1])):
            text += " (the target is out of disk space: free some, then rerun the same command to resume)"
        return text
    return first_line(exc)


def advice(exc: BinreplayError) -> str:
    """What the error line ends with: how to go on (rerunning, only when a rerun can succeed)."""
    text = exc.advice_text if exc.resumable else exc.remedy
    return f"; {text}" if text else ""
