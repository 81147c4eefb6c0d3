"""Reading: binlog files in, `Transaction`s out.

Groups events the way the server wrote them: GTID [BEGIN] ... XID|COMMIT,
standalone statements (DDL), statement context (INTVAR/RAND/USER_VAR) with the
statement it belongs to. Detects truncated tails and broken file sequences.
"""

from __future__ import annotations

import functools
import logging
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from binreplay.binlog import constants as C
from binreplay.binlog import events as E
from binreplay.binlog.file import BinlogFile, FileTail
from binreplay.binlog.boundaries import Boundaries, Control, Step, statement_control
from binreplay.binlog.names import check_file_sequence
from binreplay.binlog.rows import table_map_names
from binreplay.errors import BadInputError, PositionError, TruncatedError, UnsupportedError
from binreplay.model import Event, MysqlGtid, Transaction, TrxKind

log = logging.getLogger(__name__)


_UNSUPPORTED = {
    C.START_ENCRYPTION_EVENT: "encrypted binlog events; decrypt the binlog with the server first",
    C.BEGIN_LOAD_QUERY_EVENT: "LOAD DATA logged in statement format",
    C.EXECUTE_LOAD_QUERY_EVENT: "LOAD DATA logged in statement format",
    C.APPEND_BLOCK_EVENT: "LOAD DATA logged in statement format",
    C.DELETE_FILE_EVENT: "LOAD DATA logged in statement format",
    C.XA_PREPARE_LOG_EVENT: "XA transactions",
}


_REFUSED = frozenset(_UNSUPPORTED) | {C.INCIDENT_EVENT}
# Refused when applying as BINLOG statements (the reader decompresses them; --apply sql applies
# their inner row events, --dry-run and planning read them).
_NOT_APPLIED = {C.TRANSACTION_PAYLOAD_EVENT: "compressed MySQL transactions (TRANSACTION_PAYLOAD)"}


def _refuse(f: BinlogFile, ev: Event) -> None:
    t = ev.type_code
    if t == C.INCIDENT_EVENT:
        raise BadInputError(f"{f.path}: INCIDENT event at position {ev.start}: the source recorded that "
                            "changes may be missing from its binlog; replay stops here (as a replica would)")
    raise UnsupportedError(f"{f.path}: {ev.name} event at position {ev.start}: {_UNSUPPORTED[t]} "
                           "cannot be replayed by binreplay")


def _mysql_gtid(f: BinlogFile, ev: Event, body: bytes) -> MysqlGtid:
    try:
        return E.parse_mysql_gtid(body, ev.type_code)
    except (BadInputError, UnsupportedError) as exc:  # say where: GTID_TAGGED bodies can be refused
        raise type(exc)(f"{f.path}: position {ev.start}: {exc}") from None


@dataclass
class ReaderStats:
    files: int = 0
    events: int = 0
    bytes: int = 0
    transactions: int = 0
    unknown_events: Counter = field(default_factory=Counter)
    incomplete: list[str] = field(default_factory=list)   # transactions cut off by a file's end


def _writes_gtids(fde) -> bool:
    """Every transaction starts with a GTID event (MariaDB 10+, MySQL 5.7.6+ anonymous ones)."""
    return fde.flavor == "mariadb" or E._version_tuple(fde.server_version) >= (5, 7, 6)


class _Group:
    """A transaction being assembled."""

    def __init__(self, first: Event, file: BinlogFile) -> None:
        self.events: list[Event] = []
        self.first = first
        self.file = file
        self.gtid = None
        self.pending: list[Event] = []     # INTVAR/RAND/USER_VAR waiting for their statement
        self.statements = 0
        self.rows = 0
        self.tables: set[tuple[str, str]] = set()
        self.thread_id: int | None = None
        self.temp = False
        self.rolled_back = False
        self.from_payload = False


class BinlogReader:
    """Iterates transactions over a list of binlog files, starting at a transaction boundary."""

    def __init__(self, paths: list[Path], *, start_file_index: int = 0, start_pos: int | None = None,
                 on_warning: Callable[[str], None] | None = None) -> None:
        if not paths:
            raise BadInputError("no binlog files given")
        check_file_sequence(paths)
        self.files = [BinlogFile(p, i) for i, p in enumerate(paths)]
        for f in self.files:
            f.on_format = self._check_same_origin
        self.start_file_index = start_file_index
        self.start_pos = start_pos
        self.stats = ReaderStats()
        self._warn = on_warning or (lambda msg: log.warning(msg))
        self._seq = 0
        self._warned_unknown: set[int] = set()

    @functools.cached_property
    def file_sizes(self) -> list[int]:
        """Each file's size (0 if it cannot be read: reading it will say why)."""
        sizes = []
        for f in self.files:
            try:
                sizes.append(f.path.stat().st_size)
            except OSError:
                sizes.append(0)
        return sizes

    @property
    def last_name(self) -> str:
        return self.files[-1].name

    @property
    def last_tail(self) -> FileTail | None:
        """How the last file ended, once it was read."""
        return self.files[-1].tail

    @property
    def total_bytes(self) -> int:
        total = sum(self.file_sizes[self.start_file_index:]) - (self.start_pos or 0)
        return max(total, 0)

    def transactions(self) -> Iterator[Transaction]:
        for f in self.files[self.start_file_index:]:
            skip = self._skip_for(f)
            yield from self._file_transactions(f, skip)
            self._check_rotation(f)

    def _skip_for(self, f: BinlogFile) -> int | None:
        """The start position, for the first file read (4 is the first event anyway)."""
        if f.index == self.start_file_index and self.start_pos and self.start_pos > 4:
            return self.start_pos
        return None

    def validate(self, on_gtid: Callable[[object], None] | None = None, *,
                 compressed_ok: bool = False) -> int | None:
        """A fast pass over the same events without grouping them: framing, checksums, file
        sequence, start position, events binreplay refuses. Calls `on_gtid` with each
        transaction's GTID and returns how many transactions there are, or None for
        binlogs without GTID events (pre-5.7 MySQL), which only the full reader can count.
        `compressed_ok`: MySQL compressed transactions will be applied (--apply sql)."""
        count = 0
        for f in self.files[self.start_file_index:]:
            skip = self._skip_for(f)
            first_after_skip = skip is not None
            gtid_era = None
            for ev in f.events(skip_until=skip):
                t = ev.type_code
                if gtid_era is None and f.fde is not None:
                    gtid_era = _writes_gtids(f.fde)
                if t in _REFUSED:
                    _refuse(f, ev)
                if t in _NOT_APPLIED and not compressed_ok:
                    raise UnsupportedError(f"{f.path}: {ev.name} event at position {ev.start}: applying "
                                           f"{_NOT_APPLIED[t]} as BINLOG statements is not supported; rerun "
                                           "with --apply sql; nothing was applied")
                if first_after_skip and t not in C.FILE_LEVEL_EVENTS and ev.start >= skip:
                    first_after_skip = False
                    self._check_starts_transaction(f, ev, skip)
                if t in C.GTID_EVENTS:
                    count += 1
                    if on_gtid is not None:
                        body = f.payload(ev)
                        on_gtid(E.parse_mariadb_gtid(body, ev.server_id) if t == C.MARIADB_GTID_EVENT
                                else _mysql_gtid(f, ev, body))
            if not gtid_era:
                return None
            self._check_rotation(f)
        return count

    def _check_same_origin(self, f: BinlogFile) -> None:
        """Files of one sequence come from one server: a file from another server (a replica's, or
        one restored from elsewhere) would replay the wrong history, so it is refused up front."""
        prev = next((p for p in reversed(self.files[:f.index]) if p.fde is not None), None)
        if prev is None or f.fde is None or prev.fde is None:
            return
        if f.fde.flavor != prev.fde.flavor or f.server_id != prev.server_id:
            raise BadInputError(
                f"{f.path} was written by {f.fde.flavor} server id {f.server_id} ({f.fde.server_version}), "
                f"but {prev.name} by {prev.fde.flavor} server id {prev.server_id}: the files are not one "
                "server's binlog sequence")

    def _check_rotation(self, f: BinlogFile) -> None:
        assert f.tail is not None
        is_last = f.index == len(self.files) - 1
        if f.tail.partial_event_at is not None:
            msg = (f"{f.path}: truncated: the event at position {f.tail.partial_event_at} is incomplete "
                   f"(file size {f.tail.size})")
            if not is_last:
                raise TruncatedError(msg)
            self.stats.incomplete.append(msg)
            self._warn(msg)
        if not is_last and f.tail.rotate_to and f.tail.rotate_to != self.files[f.index + 1].name:
            raise BadInputError(f"{f.path} rotates to {f.tail.rotate_to}, but the next file given is "
                                f"{self.files[f.index + 1].name}")

    def _file_transactions(self, f: BinlogFile, skip: int | None) -> Iterator[Transaction]:
        self.stats.files += 1
        self._group = None
        self._bounds = Boundaries()
        first_after_skip = skip is not None
        stats = self.stats
        feed = self._feed
        for ev in f.events(skip_until=skip):
            stats.events += 1
            stats.bytes += ev.end - ev.start
            if first_after_skip and ev.type_code not in C.FILE_LEVEL_EVENTS and ev.start >= skip:
                first_after_skip = False
                self._check_starts_transaction(f, ev, skip)
            done = feed(f, ev)
            if done is not None:
                yield done
        group = self._group
        if group is not None and (group.events or group.pending):
            msg = (f"{f.path}: incomplete transaction at position {group.first.start} "
                   f"({len(group.events) + len(group.pending)} events): the file ends inside it; not applied")
            self.stats.incomplete.append(msg)
            self._warn(msg)

    def _check_starts_transaction(self, f: BinlogFile, ev: Event, skip: int | None) -> None:
        starts = ev.type_code in C.GTID_EVENTS or ev.type_code in C.STATEMENT_CONTEXT_EVENTS
        if ev.type_code == C.QUERY_EVENT:
            assert f.fde is not None
            starts = not _writes_gtids(f.fde)
        if not starts:
            raise PositionError(f"{f.path}: start position {skip} is inside a transaction (it points at a "
                                f"{ev.name} event); give the position of the transaction's first event")

    # -- the grouping state machine ------------------------------------------

    def _feed(self, f: BinlogFile, ev: Event) -> Transaction | None:
        """Add one event to the transaction being assembled; return the transaction it completes."""
        group: _Group | None = self._group
        t = ev.type_code
        fde = f.fde
        assert fde is not None
        if t in C.FILE_LEVEL_EVENTS:
            return None
        if t in _REFUSED:
            _refuse(f, ev)
        if t in C.GTID_EVENTS:
            if group is not None and (group.events or group.pending):
                msg = (f"{f.path}: incomplete transaction at position {group.first.start} is followed by a new "
                       f"transaction at {ev.start}; not applied")
                self.stats.incomplete.append(msg)
                self._warn(msg)
            group = _Group(ev, f)
            body = f.payload(ev)
            if t == C.MARIADB_GTID_EVENT:
                group.gtid = E.parse_mariadb_gtid(body, ev.server_id)
                if group.gtid.flags & (C.FL_PREPARED_XA | C.FL_COMPLETED_XA):
                    raise UnsupportedError(f"{f.path}: XA transaction {group.gtid} at position {ev.start} "
                                           "cannot be replayed by binreplay")
                # A MariaDB GTID event stands in for BEGIN unless it is flagged standalone.
                self._bounds.gtid(implies_begin=not group.gtid.flags & C.FL_STANDALONE)
            else:
                group.gtid = _mysql_gtid(f, ev, body)
                self._bounds.gtid(implies_begin=False)
            group.events.append(ev)
            self._group = group
            return None
        if group is None:
            group = self._group = _Group(ev, f)
        if t == C.TRANSACTION_PAYLOAD_EVENT:
            group.from_payload = True
            done = None
            for inner in self._payload_events(f, ev):
                done = self._feed(f, inner) or done
            return done
        if t in (C.QUERY_EVENT, C.QUERY_COMPRESSED_EVENT):
            q = E.parse_query(f.payload(ev), fde.post_header_lengths[C.QUERY_EVENT - 1],
                              compressed=t == C.QUERY_COMPRESSED_EVENT)
            ev.info = q
            control = statement_control(q.sql)
            if control is Control.XA:
                raise UnsupportedError(f"{f.path}: XA transaction at position {ev.start} cannot be replayed by binreplay")
            step = self._bounds.query(control)
            if step is Step.OPEN:
                group.events.append(ev)
                return None
            if step is Step.END:
                group.rolled_back = control is Control.ROLLBACK
                group.events.append(ev)
                self._group = None
                return self._close(f, group, TrxKind.STATEMENT)
            group.events.extend(group.pending)
            group.pending.clear()
            group.events.append(ev)
            group.statements += 1
            group.thread_id = q.thread_id
            if ev.flags & C.LOG_EVENT_THREAD_SPECIFIC_F:
                group.temp = True
            if step is Step.ALONE:
                # A statement outside BEGIN ... COMMIT commits on its own: DDL or non-transactional.
                self._group = None
                return self._close(f, group, TrxKind.DDL)
            return None
        if t in C.STATEMENT_CONTEXT_EVENTS:
            body = f.payload(ev)
            ev.info = (E.parse_intvar(body) if t == C.INTVAR_EVENT else
                       E.parse_rand(body) if t == C.RAND_EVENT else E.parse_user_var(body))
            group.pending.append(ev)
            return None
        if t == C.TABLE_MAP_EVENT:
            info, _ = table_map_names(f.payload(ev), fde.post_header_lengths[C.TABLE_MAP_EVENT - 1])
            ev.info = info
            group.tables.add((info.schema, info.table))
            group.events.append(ev)
            return None
        if t in C.ROWS_EVENTS:
            group.rows += 1
            group.events.append(ev)
            return None
        if t == C.XID_EVENT:
            self._bounds.event(t)
            group.events.append(ev)
            self._group = None
            return self._close(f, group, TrxKind.STATEMENT)
        if t in C.INFORMATIONAL_EVENTS:
            group.events.append(ev)
            return None
        # Unknown to us: report by name, never silently.
        self.stats.unknown_events[ev.name] += 1
        if t not in self._warned_unknown:
            self._warned_unknown.add(t)
            ignorable = "ignorable" if ev.flags & C.LOG_EVENT_IGNORABLE_F else "not marked ignorable"
            self._warn(f"{f.path}: skipping unknown event type {t} ({ev.name}, {ignorable}) at position {ev.start}")
        return None

    def _close(self, f: BinlogFile, g: _Group, default_kind: TrxKind) -> Transaction:
        assert f.fde is not None
        if default_kind is TrxKind.DDL:
            kind = TrxKind.DDL
        elif g.rows and g.statements:
            kind = TrxKind.MIXED
        elif g.rows:
            kind = TrxKind.ROWS
        elif g.statements:
            kind = TrxKind.STATEMENT
        else:
            kind = TrxKind.EMPTY
        first = g.events[0]
        last = g.events[-1]
        trx = Transaction(
            seq=self._seq, file_index=f.index, file=f.name, start_pos=first.start, end_pos=last.end,
            timestamp=first.timestamp, kind=kind, fde=f.fde, events=g.events, gtid=g.gtid,
            tables=frozenset(g.tables), thread_id=g.thread_id, uses_temporary_tables=g.temp,
            non_transactional=g.rolled_back, from_payload=g.from_payload,
        )
        self._seq += 1
        self.stats.transactions += 1
        return trx

    def _payload_events(self, f: BinlogFile, ev: Event) -> Iterator[Event]:
        """Decompress a MySQL TRANSACTION_PAYLOAD into its inner events.

        Inner events carry no checksum; one is added when the file uses CRC32 so
        they look exactly like ordinary events to every later stage.
        """
        assert f.fde is not None
        body = f.payload(ev)
        compression, size, offset = E.parse_payload_header(body)
        data = body[offset:]
        if compression == 0:
            try:
                import zstandard
            except ImportError:  # pragma: no cover - a declared dependency
                raise UnsupportedError("zstandard is required to read compressed transactions") from None
            try:
                data = zstandard.ZstdDecompressor().decompress(data, max_output_size=max(size, 1 << 20))
            except zstandard.ZstdError as exc:
                raise BadInputError(f"{f.path}: corrupt compressed transaction at position {ev.start}: {exc}") from None
        elif compression != 255:
            raise UnsupportedError(f"{f.path}: unknown compression type {compression} at position {ev.start}")
        pos = 0
        while pos + C.HEADER_LEN <= len(data):
            ts, type_code, server_id, size_, _lp, flags = struct.unpack_from("<IBIIIH", data, pos)
            raw = data[pos:pos + size_]
            if f.fde.has_crc32:
                raw = bytearray(raw)
                struct.pack_into("<I", raw, 9, size_ + C.CRC_LEN)
                raw = bytes(raw) + struct.pack("<I", zlib.crc32(raw))
            self.stats.events += 1
            yield Event(type_code, ts, server_id, flags, ev.start, ev.end, raw)
            pos += size_
