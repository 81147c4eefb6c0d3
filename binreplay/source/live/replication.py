"""The one place that imports `pymysqlreplication` (the mysql-replication package).

Everything else in binreplay works on its own framing (binlog/) and model (model.py); this adapter
takes from the library only what fits and decodes nothing with it, so the library's known
decoding bugs (INTVAR read as 4 of its 8 bytes, a zero TIMESTAMP as 1970-01-01, YEAR 0000 as
1900, MySQL JSON keys as bytes) never reach the rest of the code.
"""

from __future__ import annotations

# --- decoding raw row events into typed values (used by --apply sql) ---
# Deliberately empty: --apply sql does not decode through the library. Its decoder turns row
# values into Python objects (lossy for zero dates, YEAR 0000, TIMESTAMP 0, strings in
# charsets it guesses, JSON keys as bytes) that would then need re-encoding as SQL. binreplay
# instead walks the raw row images itself (binlog/rows.py, binlog/table_meta.py) and renders
# each value's bytes straight to an exact SQL literal (apply/sql_values.py, binlog/mysql_json.py); the
# library's known wrong cases are pinned in tests/integration/test_sql_apply.py.
# --- streaming events from a live server over the replication protocol (used by --source-host, fetch) ---
#
# The library's BinLogStreamReader decodes every event it reads (and drops the types it does not
# map), cannot ask a MariaDB server for ANNOTATE_ROWS events in file/position mode (so the stream
# would have holes), and reconnects silently from a position it tracks itself. binreplay needs the
# events byte for byte and owns its position, so it drives the dump itself on a pymysql connection
# and takes from the library what fits: slave registration (ReportSlave) and the MySQL GTID-set
# encoding (GtidSet) of COM_BINLOG_DUMP_GTID. Nothing here decodes an event.
import struct as _struct
from collections.abc import Iterator as _Iterator
from contextlib import suppress as _suppress
from dataclasses import dataclass as _dataclass

import pymysql as _pymysql
from pymysql.constants.COMMAND import COM_BINLOG_DUMP, COM_REGISTER_SLAVE
from pymysqlreplication.binlogstream import COM_BINLOG_DUMP_GTID, ReportSlave
from pymysqlreplication.gtid import GtidSet

from binreplay.errors import Fault, classify_code, error_code

_BINLOG_DUMP_NON_BLOCK = 0x01            # EOF at the end of the binlog instead of waiting
_BINLOG_SEND_ANNOTATE_ROWS_EVENT = 0x02  # MariaDB: else ANNOTATE_ROWS events are left out (holes)
_BINLOG_THROUGH_GTID = 0x04              # MySQL COM_BINLOG_DUMP_GTID
_MARIA_SLAVE_CAPABILITY_GTID = 4         # MariaDB sends GTID events as they are, not as BEGIN stand-ins


class StreamLost(Exception):
    """The replication connection dropped (network, KILL, source restart): reconnect and go on."""


class StreamRefused(Exception):
    """The source answered the dump with an error (`code`, `message`): retrying will not help."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"error {code}: {message}")
        self.code = code
        self.message = message


@_dataclass(frozen=True)
class DumpRequest:
    """What one COM_BINLOG_DUMP[_GTID] asks for."""

    server_id: int              # distinct from every real replica of the source
    file: str = ""              # start binlog ("" with a GTID start)
    position: int = 4
    follow: bool = False        # block at the end of the binlog and wait for more (a replica's dump)
    heartbeat_s: float = 5.0    # the source sends a heartbeat after this long without events
    mariadb_gtid: str | None = None   # MariaDB: start after this GTID position (@slave_connect_state)
    mysql_gtid_set: str | None = None  # MySQL: start after these executed GTIDs
    report_host: str = "binreplay"


class ReplicationStream:
    """One binlog dump over an open pymysql connection: raw events (header, body, checksum), in order."""

    def __init__(self, conn: _pymysql.connections.Connection, request: DumpRequest, flavor: str) -> None:
        self.conn = conn
        self.request = request
        self.flavor = flavor

    def start(self) -> None:
        r = self.request
        session = [
            # Say we handle checksums: the events then come exactly as the source logged them.
            "SET @master_binlog_checksum = @@global.binlog_checksum, "
            "@source_binlog_checksum = @@global.binlog_checksum",
            f"SET @master_heartbeat_period = {int(r.heartbeat_s * 1e9)}",
        ]
        if self.flavor == "mariadb":
            session.append(f"SET @mariadb_slave_capability = {_MARIA_SLAVE_CAPABILITY_GTID}")
            if r.mariadb_gtid is not None:
                session.append("SET @slave_connect_state = " + self.conn.escape(r.mariadb_gtid)
                               + ", @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0")
        try:
            with self.conn.cursor() as cur:
                for sql in session:
                    cur.execute(sql)
            # Shows up in SHOW SLAVE HOSTS / SHOW REPLICAS on the source.
            self._command(COM_REGISTER_SLAVE, ReportSlave(r.report_host).encoded(r.server_id)[5:])
            self.conn._read_packet()
            if r.mysql_gtid_set is not None:
                self._command(COM_BINLOG_DUMP_GTID, self._mysql_gtid_dump())
            else:
                flags = 0 if r.follow else _BINLOG_DUMP_NON_BLOCK
                if self.flavor == "mariadb":
                    flags |= _BINLOG_SEND_ANNOTATE_ROWS_EVENT
                self._command(COM_BINLOG_DUMP, _struct.pack("<IHI", r.position, flags, r.server_id) + r.file.encode())
        except _pymysql.MySQLError as exc:
            raise _classify(exc) from None

    def _mysql_gtid_dump(self) -> bytes:
        r = self.request
        gtids = GtidSet(r.mysql_gtid_set or "")
        flags = _BINLOG_THROUGH_GTID | (0 if r.follow else _BINLOG_DUMP_NON_BLOCK)
        name = r.file.encode()
        return (_struct.pack("<HII", flags, r.server_id, len(name)) + name + _struct.pack("<Q", r.position)
                + _struct.pack("<I", gtids.encoded_length) + gtids.encoded())

    def _command(self, command: int, payload: bytes) -> None:
        # pymysql's own framing (sequence ids, packets over 16 MiB) without its result-set handling.
        self.conn._execute_command(command, payload)  # type: ignore[attr-defined]  # private: not in pymysql's stubs

    def events(self) -> _Iterator[bytes]:
        """Each event's bytes as the source's binlog holds them; returns at the end of a
        non-blocking dump. Raises StreamLost or StreamRefused."""
        read = self.conn._read_packet
        while True:
            try:
                packet = read()
            except _pymysql.MySQLError as exc:
                raise _classify(exc) from None
            except OSError as exc:  # a socket closed under us (e.g. to stop a blocked read)
                raise StreamLost(str(exc)) from None
            data = packet.get_all_data()
            if data[:1] == b"\xfe" and len(data) < 9:   # EOF: the end of a non-blocking dump
                return
            yield data[1:]  # after the OK byte

    def set_read_timeout(self, seconds: float) -> None:
        """A dead source must not hang a blocked read forever (heartbeats keep a live one talking)."""
        sock = getattr(self.conn, "_sock", None)
        if sock is not None:
            sock.settimeout(seconds)

    def abort(self) -> None:
        """Unblock a read in progress from another thread (it then raises StreamLost)."""
        import socket as _socket

        sock = getattr(self.conn, "_sock", None)
        if sock is not None:
            with _suppress(OSError):
                sock.shutdown(_socket.SHUT_RDWR)

    def close(self) -> None:
        with _suppress(Exception):  # already broken: nothing to close cleanly
            self.conn.close()


def _classify(exc: Exception) -> Exception:
    """A lost connection is remedied by a new dump from the last position written; any other error
    is the source's answer."""
    args: tuple[object, ...] = getattr(exc, "args", ())
    code = error_code(exc)
    message = str(args[1]) if len(args) > 1 else str(exc)
    if classify_code(code) is Fault.LOST or code == 0:
        return StreamLost(f"error {code}: {message}" if code else message)
    return StreamRefused(code, message.splitlines()[0] if message else "")
