"""Fetching binlogs from a live server into local files, byte for byte as the server has them.

The stream comes over the replication protocol (replication.ReplicationStream). Every
event is checked before it is written: its size, its CRC32, and that it starts exactly where the
previous one ended (the header's end position). Events are held back until their transaction is
complete (up to a pending limit; a larger transaction is written through), and the position
published to the replay is always the end of a complete transaction. spool.py says what exactly
a file's end is guaranteed to be.

The local files are the only state: a rerun (after a kill, a lost source, Ctrl-C) truncates the
last file to its last transaction boundary and asks the source for the rest from there; the stop
points (--stop-gtid, --stop-datetime) the spool already holds are found by reading it, as the
source will not send them again. A lost connection is handled the same way within a run, so
reconnecting never loses or repeats an event.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog.boundaries import Boundaries
from binreplay.binlog.events import parse_format_description, parse_rotate
from binreplay.binlog.file import verify_crc, verify_fde_crc
from binreplay.binlog.gtid_events import parse_mariadb_gtid
from binreplay.binlog.header import body_of
from binreplay.binlog.names import binlog_sort_key
from binreplay.errors import ER_SOURCE_CANNOT_SERVE, BadInputError, Fault, PrivilegeError, SourceError, classify_code
from binreplay.model import FormatDescription
from binreplay.server.connection import ServerConfig, connect
from binreplay.signals import Background, StopSignals
from binreplay.source.gtid import MariadbGtidBounds, parse_mariadb_gtid_list
from binreplay.source.live.fetch_options import FetchOptions, FetchStats, check_fetch_options, random_server_id
from binreplay.source.live.fetch_start import inspect_source, resume_point
from binreplay.source.live.replication import DumpRequest, ReplicationStream, StreamLost, StreamRefused
from binreplay.source.live.spool import SpoolFile, feed_boundary, make_spool_dir, spool_events

# The options and stats are defined in fetch_options.py; importers take them from here too.
__all__ = ["FetchOptions", "FetchStats", "Fetcher", "check_fetch_options", "fetch_until_signalled",
           "random_server_id"]

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IBIIIH")
_PENDING_LIMIT = 64 << 20     # a larger transaction is written through before it completes
_SYNC_EVERY_S = 0.5


class Fetcher:
    """Streams the source's binlogs into `opts.out`; `run()` returns at the stop point, at the
    end of the binlog (without `follow`), or when `stop()` is called from another thread."""

    def __init__(self, opts: FetchOptions, on_commit: Callable[[FetchStats], None] | None = None) -> None:
        self.opts = opts
        self.on_commit = on_commit
        self.stats = FetchStats()
        self._stopping = threading.Event()
        self._stream: ReplicationStream | None = None
        self._boundaries = Boundaries()
        self._gtid_bounds = MariadbGtidBounds(None, parse_mariadb_gtid_list(opts.stop_gtid)) if opts.stop_gtid else None
        self._reached: set[int] = set()
        self.file: SpoolFile | None = None
        self.name: str | None = None
        self.fde: FormatDescription | None = None
        self.pending: list[bytes] = []
        self._pending_bytes = 0  # sum of len(pending), kept as it grows (big transactions have many events)
        self.pos = 0           # end of the last event taken (written or pending)
        self._expect: tuple[str, int] | None = None  # (file, position) the next event must be at
        self._written_state = self._boundaries.state()
        self._finished = False  # the current file ended (ROTATE or STOP): the next must be a new one
        self._done = False

    # -- public ----------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()
        if self._stream is not None:
            self._stream.abort()

    def run(self) -> FetchStats:
        cfg = self.opts.source.resolved()
        make_spool_dir(self.opts.out)
        conn = self._connect(cfg)
        try:
            source = inspect_source(conn, cfg)
            self.flavor, self.crc = source.flavor, source.crc32
            start = self._resume_point(conn, source.binlogs)
        finally:
            conn.close()
        self._start_at(*start)
        if self.stats.position is not None and self.on_commit is not None:
            self.on_commit(self.stats)   # what an earlier run spooled can be replayed before anything new comes
        lost_since: float | None = None
        while not self._done and not self._stopping.is_set():
            try:
                self._stream_once(cfg)
                lost_since = None
                if not self.opts.follow:
                    break   # a non-blocking dump ended: everything up to the binlog's end is here
            except StreamLost as exc:
                if self._stopping.is_set():
                    break
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > self.opts.retry_for_s:
                    raise SourceError(f"lost the source {cfg.where} for {self.opts.retry_for_s:.0f}s ({exc}); "
                                      f"fetched up to {self.name}:{self.file.size if self.file else 4}; "
                                      "rerun to resume") from None
                self.stats.reconnects += 1
                log.warning("replication connection to %s lost (%s); resuming at %s:%s", cfg.where, exc,
                            self.name, self.file.size if self.file else 4)
                time.sleep(min(2.0, 0.1 * self.stats.reconnects))
        self._close_file()
        return self.stats

    # -- setup -------------------------------------------------------------------

    def _connect(self, cfg: ServerConfig):
        return connect(cfg, role="source", multi_statements=False)

    def _resume_point(self, conn, available: list[str]) -> tuple[str, int]:
        """Where to ask the source to start: after what the spool already holds, else the start file."""
        point = resume_point(self.opts, available, lambda: self._file_of_gtid_position(conn))
        self.stats.files, self.file, self.fde = point.files, point.file, point.fde
        if point.position is not None:
            self.stats.position = point.position
            self._stops_in_spool(point.complete)
        return point.name, point.pos

    def _stops_in_spool(self, paths: list[Path]) -> None:
        """A rerun asks the source for what comes after the spool, so a stop point the spool already
        holds (the fetch before was stopped after reaching it) is never streamed again: find it there,
        with the same checks `_take` makes, and finish before streaming."""
        if self._gtid_bounds is None and self.opts.stop_datetime is None:
            return
        boundaries = Boundaries()
        for ev, body, fde in spool_events(paths):
            if self._stops_before(ev.type_code, ev.timestamp, boundaries):
                return
            at_boundary = feed_boundary(boundaries, ev.type_code, body, fde)
            self._note_stop_gtid(ev.type_code, body, ev.server_id)
            if at_boundary and self._all_stop_gtids_reached():
                return

    def _file_of_gtid_position(self, conn) -> str:
        """The binlog the source would start a GTID replica in: its first fake ROTATE names it.
        The whole file is then fetched (so positions stay true) and the replay skips by GTID."""
        cfg = self.opts.source.resolved()
        stream = ReplicationStream(self._connect(cfg), DumpRequest(
            server_id=self.opts.server_id, mariadb_gtid=self.opts.start_gtid if self.flavor == "mariadb" else None,
            mysql_gtid_set=self.opts.exclude_gtids if self.flavor == "mysql" else None), self.flavor)
        try:
            stream.start()
            for raw in stream.events():
                if raw[4] == C.ROTATE_EVENT:
                    return parse_rotate(self._body(raw))[1]
        except StreamRefused as exc:
            raise self._refused(exc) from None
        finally:
            stream.close()
        raise BadInputError("the source named no binlog for the GTID position")

    # -- streaming ----------------------------------------------------------------

    def _start_at(self, name: str, pos: int) -> None:
        self.name, self.pos = name, pos
        self._finished = pos == 4
        if name not in self.stats.files:
            self.stats.files.append(name)

    def _stream_once(self, cfg: ServerConfig) -> None:
        assert self.name is not None
        # Anything not yet written is asked for again: the spool's end is the position.
        self.pending.clear()
        self._pending_bytes = 0
        self._boundaries.restore(self._written_state)
        self.pos = self.file.size if self.file is not None and self.name == self.file.path.name else 4
        self._expect = (self.name, self.pos)
        request = DumpRequest(server_id=self.opts.server_id, file=self.name, position=self.pos,
                              follow=self.opts.follow, heartbeat_s=self.opts.heartbeat_s,
                              report_host=f"binreplay@{socket.gethostname()}"[:60])
        try:
            conn = self._connect(cfg)
        except SourceError as exc:
            raise StreamLost(str(exc)) from None
        self._stream = stream = ReplicationStream(conn, request, self.flavor)
        try:
            stream.set_read_timeout(max(30.0, 4 * self.opts.heartbeat_s))
            stream.start()
            if self._stopping.is_set():
                return
            for raw in stream.events():
                self._take(raw)
                if self._done:
                    return
        except StreamRefused as exc:
            raise self._refused(exc) from None
        finally:
            self._stream = None
            stream.close()

    def _refused(self, exc: StreamRefused) -> Exception:
        if classify_code(exc.code) is Fault.PRIVILEGE:
            return PrivilegeError(f"the source user lacks REPLICATION SLAVE (needed to read the binlog over "
                                  f"the replication protocol): {exc.message}")
        if exc.code == ER_SOURCE_CANNOT_SERVE:
            return BadInputError(f"the source cannot send {self.name}:{self.pos}: {exc.message}")
        return SourceError(f"the source refused the binlog dump: {exc}")

    def _body(self, raw: bytes) -> bytes:
        return body_of(raw, self.crc)

    def _take(self, raw: bytes) -> None:
        """One event off the wire: check it, then queue it for its transaction's write."""
        ts, t, server_id, size, log_pos, flags = _HEADER.unpack_from(raw)
        if size != len(raw):
            raise SourceError(f"malformed event from the source: header says {size} bytes, packet has {len(raw)}")
        if t in (C.HEARTBEAT_LOG_EVENT, C.HEARTBEAT_LOG_EVENT_V2):
            return
        if t == C.ROTATE_EVENT and (flags & C.LOG_EVENT_ARTIFICIAL_F or log_pos == 0):
            self._fake_rotate(raw)
            return
        if t == C.FORMAT_DESCRIPTION_EVENT and self._expect is not None:
            self._format_description(raw, log_pos)
            return
        if self._expect is not None or self.fde is None:
            raise SourceError(f"the source sent {C.event_name(t)} before naming its binlog file")
        if log_pos != self.pos + size:
            raise SourceError(f"{self.name}: the event after position {self.pos} ends at {log_pos}, not at "
                              f"{self.pos + size}: the stream has a gap or a repeat; nothing after {self.pos} "
                              "was written")
        if self.fde.has_crc32:
            verify_crc(raw, f"{self.name}: {C.event_name(t)} event at {self.pos} from the source")
        if self._stops_before(t, ts, self._boundaries):
            return
        body = self._body(raw)
        at_boundary = feed_boundary(self._boundaries, t, body, self.fde)
        self.pending.append(raw)
        self._pending_bytes += size
        self.pos += size
        self.stats.events += 1
        self.stats.bytes += size
        self._note_stop_gtid(t, body, server_id)
        ended = t == C.STOP_EVENT or t == C.ROTATE_EVENT
        if at_boundary or ended or self._pending_bytes > _PENDING_LIMIT:
            self._write_pending(force_sync=ended)
        if ended:
            self._finished = True
            assert self.file is not None
            self.file.mark_closed()
            if self.opts.stop_file == self.name:
                self._finish(f"reached the end of --stop-file {self.name}")
        if at_boundary:
            self._all_stop_gtids_reached()

    def _note_stop_gtid(self, t: int, body: bytes, server_id: int) -> None:
        if t == C.MARIADB_GTID_EVENT and self._gtid_bounds is not None:
            g = parse_mariadb_gtid(body, server_id)
            if self._gtid_bounds.stop_reached(g):
                self._reached.add(g.domain_id)

    def _all_stop_gtids_reached(self) -> bool:
        """At a transaction boundary: --stop-gtid is complete in every domain it names (then finish)."""
        if self._gtid_bounds is None or not self._gtid_bounds.all_stops_reached(self._reached):
            return False
        self._finish("reached --stop-gtid in every domain it names")
        return True

    def _stops_before(self, t: int, ts: int, boundaries: Boundaries) -> bool:
        """--stop-datetime: the first transaction at or after it is not fetched."""
        stop = self.opts.stop_datetime
        if stop is None or ts < stop or boundaries.inside or t in C.FILE_LEVEL_EVENTS:
            return False
        self._finish("reached --stop-datetime")
        return True

    def _finish(self, reason: str) -> None:
        self.stats.stop_reason = reason
        self._done = True

    def _fake_rotate(self, raw: bytes) -> None:
        """The source names the file (and position) the events that follow come from."""
        pos, name = parse_rotate(self._body(raw))
        if self._expect is not None and name == self._expect[0]:
            if pos != self._expect[1]:
                raise SourceError(f"asked the source for {name}:{self._expect[1]}, it starts at {pos}")
            return
        # The source moved on to another file: after the previous one ended (ROTATE or STOP), or
        # after a crash left it without an end.
        if pos != 4 or (self.name is not None and binlog_sort_key(name) <= binlog_sort_key(self.name)):
            raise SourceError(f"the source jumped from {self.name}:{self.pos} to {name}:{pos}")
        if self.pending:
            raise SourceError(f"{self.name}: the source moved to {name} inside a transaction at {self.pos}")
        if not self._finished:
            log.warning("%s ends at %d without a ROTATE or STOP event (the source crashed?); going on with %s",
                        self.name, self.pos, name)
        if self.opts.stop_file is not None and self.name == self.opts.stop_file:
            self._finish(f"reached the end of --stop-file {self.name}")
            return
        self._close_file()
        self.name, self.pos, self.fde = name, 4, None
        self._expect = (name, 4)
        self.stats.files.append(name)

    def _format_description(self, raw: bytes, log_pos: int) -> None:
        assert self._expect is not None and self.name is not None
        name, pos = self._expect
        self._expect = None
        if pos > 4:
            # Resuming inside a file: the source repeats its FDE with log_pos 0; the copy has it.
            if self.fde is None:
                self.fde = parse_format_description(raw)
            return
        raw = self._as_written(raw, log_pos)
        self.fde = parse_format_description(raw)
        if self.fde.has_crc32:
            verify_fde_crc(raw, f"{name}: FORMAT_DESCRIPTION event from the source")
        self._close_file()
        self.file = SpoolFile(self.opts.out / name, 0)
        self.file.write([C.MAGIC, raw])
        self._finished = False
        self.pos = 4 + len(raw)
        self._written_state = self._boundaries.state()
        self._publish()

    def _as_written(self, raw: bytes, log_pos: int) -> bytes:
        """The FDE as the source's file holds it. The source writes it with the in-use flag set but
        checksums it with the flag clear (so clearing it on close leaves the checksum valid); the
        dump sends it with the flag clear. Sources that send log_pos 0 get their end position back."""
        fixed = bytearray(raw)
        if log_pos == 0:
            struct.pack_into("<I", fixed, 13, 4 + len(raw))
            if self.crc:
                struct.pack_into("<I", fixed, len(fixed) - 4, zlib.crc32(bytes(fixed[:-4])))
        struct.pack_into("<H", fixed, 17, struct.unpack_from("<H", fixed, 17)[0] | C.LOG_EVENT_BINLOG_IN_USE_F)
        return bytes(fixed)

    def _write_pending(self, force_sync: bool = False) -> None:
        assert self.file is not None
        if self.pending:
            self.file.write(self.pending)
            self.pending.clear()
            self._pending_bytes = 0
        self._written_state = self._boundaries.state()
        if force_sync or time.monotonic() - self.file.synced_at > _SYNC_EVERY_S:
            self.file.sync()
        if not self._boundaries.inside:
            self._publish()

    def _publish(self) -> None:
        assert self.file is not None and self.name is not None
        self.stats.position = (self.name, self.file.size)
        if self.on_commit is not None:
            self.on_commit(self.stats)

    def _close_file(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def fetch_until_signalled(opts: FetchOptions,
                          on_commit: Callable[[FetchStats], None] | None = None) -> FetchStats:
    """`binreplay fetch`: run a Fetcher in a thread so SIGINT/SIGTERM stop it cleanly (the files end at a
    transaction boundary), then exit 130; a rerun resumes. `on_commit` sees the stats after each
    transaction written (progress)."""
    fetcher = Fetcher(opts, on_commit=on_commit)
    with StopSignals(on_stop=fetcher.stop, second_interrupts=False) as stop:
        stats = Background(fetcher.run, "binreplay-fetch").start().result()
    stop.raise_if_stopped()
    return stats
