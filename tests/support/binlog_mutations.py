"""Hostile binlogs for the bad-input tests (issue 12): the real fixtures, damaged the way a failing
disk or an attacker would, and one runner that feeds a file set to binreplay and classifies what
happened.

A binlog is cut into its events (`split`), events are changed, moved, dropped or added, and the
file is put back together (`join`). `join` can repair the framing afterwards (every header's
`log_pos` and every CRC recomputed) so that a mutation gets past the checksums and reaches the
event-body parsers and the transaction assembler; without repair, the framing checks are tested.

`run_offline(kind, files)` runs one of binreplay's offline readers under a time and memory bound
and returns an `Outcome`: success, or a BinreplayError with its exit code and message. Any other
exception, a hang or an unbounded allocation raises `Escaped` (a bug, with the details).
"""

from __future__ import annotations

import contextlib
import io
import random
import resource
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from binreplay.binlog import constants as C
from binreplay.binlog.names import binlog_arguments
from binreplay.errors import BinreplayError

from data import BINLOGS

HEADER = struct.Struct("<IBIIIH")   # timestamp, type, server id, event size, log_pos, flags


# --- the fixtures, as events ----------------------------------------------------------------

# Single files every mutation starts from (all of tests/data/binlogs that a replay reads).
FIXTURES = sorted(p.relative_to(BINLOGS).as_posix() for p in BINLOGS.rglob("*") if p.is_file()
                  and p.suffix not in (".md", "") and p.name != "SHA256SUMS")
PAIR = ("mysql/percona-8.0.45-gtid.000001", "mysql/percona-8.0.45-gtid.000002")   # a rotated pair
PAIR_NAMES = ("binlog.000001", "binlog.000002")   # the names its ROTATE event gives


@dataclass
class Ev:
    raw: bytearray
    delta: int | None = 0       # its end position minus its end as written (None: written as 0)

    @property
    def type(self) -> int:
        return self.raw[4]

    @property
    def log_pos(self) -> int:
        return struct.unpack_from("<I", self.raw, 13)[0]

    def copy(self) -> Ev:
        return Ev(bytearray(self.raw), self.delta)


@dataclass
class Binlog:
    events: list[Ev]
    crc: bool                   # the FORMAT_DESCRIPTION says CRC32

    def copy(self) -> Binlog:
        return Binlog([e.copy() for e in self.events], self.crc)


def fde_checksum_alg(fde: bytes | bytearray) -> int:
    """The checksum algorithm byte of a FORMAT_DESCRIPTION event (all fixtures have the trailer)."""
    return fde[-5]


def split(data: bytes) -> Binlog:
    """An intact binlog -> its events (the fixtures are intact: their headers are trusted here)."""
    assert data[:4] == C.MAGIC
    pos, events = 4, []
    while pos + C.HEADER_LEN <= len(data):
        size = HEADER.unpack_from(data, pos)[3]
        if size < C.HEADER_LEN or pos + size > len(data):
            break
        log_pos = HEADER.unpack_from(data, pos)[4]
        events.append(Ev(bytearray(data[pos:pos + size]), log_pos - pos - size if log_pos else None))
        pos += size
    return Binlog(events, fde_checksum_alg(events[0].raw) == 1)


def load(name: str) -> Binlog:
    return split((BINLOGS / name).read_bytes())


def set_crc(raw: bytearray) -> None:
    struct.pack_into("<I", raw, len(raw) - 4, zlib.crc32(raw[:-4]))


def join(b: Binlog, *, repair: bool = True, lengths: bool = False) -> bytes:
    """The file again. With `repair`, every header's size and end position follow the event's place
    in the new file (a log_pos of 0, or a relay log's offset one, stays as the server wrote it)
    and every CRC is recomputed; with `lengths` too, the transaction length MySQL 8 GTID events
    carry follows what the transaction now holds (as an attacker would forge it)."""
    if lengths:
        fix_transaction_lengths(b)
    out = bytearray(C.MAGIC)
    for ev in b.events:
        raw = ev.raw
        if repair:
            raw = bytearray(raw)
            struct.pack_into("<I", raw, 9, len(raw))
            if ev.delta is not None:
                struct.pack_into("<I", raw, 13, (len(out) + len(raw) + ev.delta) & 0xFFFFFFFF)
            has_crc = b.crc or ev.type == C.FORMAT_DESCRIPTION_EVENT
            if has_crc and len(raw) >= C.HEADER_LEN + 4:
                set_crc(raw)
        out += raw
    return bytes(out)


_ENDS_TRANSACTION_SPAN = C.GTID_EVENTS | C.FILE_LEVEL_EVENTS


def transaction_length_at(raw: bytes | bytearray, crc: bool) -> tuple[int, int, int] | None:
    """(value, offset, width) of a MySQL GTID or anonymous GTID event's transaction length field."""
    at = C.HEADER_LEN + 42 + 7
    end = len(raw) - (4 if crc else 0)
    if raw[4] not in (C.GTID_LOG_EVENT, C.ANONYMOUS_GTID_LOG_EVENT) or end < at + 1:
        return None
    if raw[at - 1] & 0x80:
        at += 7
    if at >= end or raw[at] == 251 or raw[at] == 255:
        return None
    width = {252: 3, 253: 4, 254: 9}.get(raw[at], 1)
    value = raw[at] if width == 1 else int.from_bytes(raw[at + 1:at + width], "little")
    return value, at, width


def fix_transaction_lengths(b: Binlog) -> None:
    """Set each MySQL GTID event's transaction length to the bytes from it to the next GTID or
    file-level event (when the new value has the same encoded width)."""
    for i, ev in enumerate(b.events):
        field = transaction_length_at(ev.raw, b.crc)
        if field is None:
            continue
        _old, at, width = field
        length = len(ev.raw)
        for nxt in b.events[i + 1:]:
            if nxt.type in _ENDS_TRANSACTION_SPAN:
                break
            length += len(nxt.raw)
        if width == 1 and length < 251:
            ev.raw[at] = length
        elif width > 1 and length < 1 << (8 * (width - 1)):
            ev.raw[at + 1:at + width] = length.to_bytes(width - 1, "little")


# --- mutations --------------------------------------------------------------------------------
# Each takes a random source and the file's events and returns the new bytes; `repair` decides
# whether the framing is made consistent again afterwards.

def _body_range(b: Binlog, ev: Ev) -> tuple[int, int]:
    crc = 4 if b.crc or ev.type == C.FORMAT_DESCRIPTION_EVENT else 0
    return C.HEADER_LEN, max(C.HEADER_LEN, len(ev.raw) - crc)


def _pick(r: random.Random, b: Binlog, *, body: bool = False, skip_fde: bool = False) -> Ev:
    choices = [e for e in b.events if (not skip_fde or e.type != C.FORMAT_DESCRIPTION_EVENT)
               and (not body or _body_range(b, e)[1] > C.HEADER_LEN)]
    return r.choice(choices or b.events)


def bit_flip(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """One to three bits flipped anywhere in an event (its header included)."""
    ev = _pick(r, b)
    for _ in range(r.randint(1, 3)):
        i = r.randrange(len(ev.raw) - (4 if repair and b.crc else 0))
        ev.raw[i] ^= 1 << r.randrange(8)
    return _out(r, b, repair)


_INTERESTING = (0, 1, 0x7F, 0x80, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF)


def body_bytes(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """A run of body bytes replaced (boundary values: 0, 0xFF, the packed-integer prefixes...)."""
    ev = _pick(r, b, body=True, skip_fde=r.random() < 0.8)
    lo, hi = _body_range(b, ev)
    if hi <= lo:
        return join(b, repair=repair)
    at = r.randrange(lo, hi)
    for i in range(at, min(hi, at + r.randint(1, 8))):
        ev.raw[i] = r.choice(_INTERESTING) if r.random() < 0.6 else r.randrange(256)
    return _out(r, b, repair)


def truncate(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """The file cut short anywhere (inside or between events)."""
    return data[:r.randrange(len(data))]


def event_size(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """An event's size field changed (its end position too, with repair: only the CRC then tells)."""
    ev = _pick(r, b)
    size = len(ev.raw)
    new = r.choice([0, 1, C.HEADER_LEN - 1, C.HEADER_LEN, size - 1, size + 1, size ^ (1 << r.randrange(32)),
                    r.randrange(1 << 32), (1 << 30) + 1])
    out = bytearray(_raw_join(b))
    at = 4 + sum(len(e.raw) for e in b.events[:b.events.index(ev)])
    struct.pack_into("<I", out, at + 9, new & 0xFFFFFFFF)
    if repair:
        struct.pack_into("<I", out, at + 13, (at + new) & 0xFFFFFFFF)
    return bytes(out)


def event_type(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """An event's type byte changed (to a known type, or an unknown one), CRC recomputed."""
    ev = _pick(r, b, skip_fde=r.random() < 0.9)
    ev.raw[4] = r.choice(sorted(C.event_names())) if r.random() < 0.7 else r.randrange(256)
    if r.random() < 0.3:
        ev.raw[17] ^= C.LOG_EVENT_IGNORABLE_F
    return _out(r, b, True)


def swap(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """Two events exchanged (often neighbours: a TABLE_MAP and its rows event)."""
    if len(b.events) < 3:
        return join(b)
    i = r.randrange(1, len(b.events) - 1)
    j = i + 1 if r.random() < 0.7 else r.randrange(1, len(b.events))
    b.events[i], b.events[j] = b.events[j], b.events[i]
    return _out(r, b, repair)


def duplicate(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """An event written twice (or a copy inserted elsewhere)."""
    i = r.randrange(len(b.events))
    j = i + 1 if r.random() < 0.6 else r.randrange(1, len(b.events) + 1)
    ev = b.events[i]
    b.events.insert(j, ev.copy())
    return _out(r, b, repair)


def delete(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """An event left out (an XID, a TABLE_MAP, a GTID, ...)."""
    if len(b.events) < 2:
        return join(b)
    del b.events[r.randrange(1, len(b.events))]
    return _out(r, b, repair)


def wrong_fde(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """The FORMAT_DESCRIPTION of another server (flavour, version, checksums) put in front."""
    other = load(r.choice(FIXTURES))
    b.events[0] = other.events[0].copy()
    if r.random() < 0.5:   # the rest of the file keeps its own checksum setting
        return _raw_join(b)
    b.crc = other.crc
    return _out(r, b, True)


def checksum_flag(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """The FORMAT_DESCRIPTION's checksum algorithm byte changed (its own CRC recomputed or not)."""
    fde = b.events[0].raw
    fde[-5] = r.choice([0, 1, 2, 0xFF, fde[-5] ^ 1])
    if repair:
        set_crc(fde)
    return _raw_join(b)


def garbage(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """Bytes appended after the last event: random, zeros, or something that looks like a header."""
    choice = r.randrange(3)
    if choice == 0:
        tail = r.randbytes(r.randint(1, 200))
    elif choice == 1:
        tail = bytes(r.randint(1, 200))
    else:
        tail = HEADER.pack(0, r.randrange(256), 1, r.choice([C.HEADER_LEN, 1 << 20, (1 << 32) - 1]),
                           0, 0) + r.randbytes(r.randint(0, 40))
    return data + tail


def payload_inner(r: random.Random, b: Binlog, data: bytes, repair: bool) -> bytes:
    """A compressed transaction's inner events damaged, then compressed again (framing repaired)."""
    import zstandard

    payloads = [e for e in b.events if e.type == C.TRANSACTION_PAYLOAD_EVENT]
    assert payloads, "payload_inner needs a fixture with a compressed transaction (PAYLOAD_FIXTURES)"
    ev = r.choice(payloads)
    lo, hi = _body_range(b, ev)
    body = bytes(ev.raw[lo:hi])
    fields, at = {}, 0
    while at < len(body):
        code, at = _packed(body, at)
        if code == 0:
            break
        length, at = _packed(body, at)
        fields[code] = _packed(body, at)[0]
        at += length
    inner = bytearray(zstandard.ZstdDecompressor().decompress(body[at:], max_output_size=1 << 20))
    inner_events = []
    pos = 0
    while pos + C.HEADER_LEN <= len(inner):
        size = struct.unpack_from("<I", inner, pos + 9)[0]
        inner_events.append(bytearray(inner[pos:pos + size]))
        pos += size
    what = r.randrange(4)
    victim = r.randrange(len(inner_events))
    if what == 0:    # its size field
        struct.pack_into("<I", inner_events[victim], 9, r.choice([0, 1, C.HEADER_LEN - 1, 1 << 20]))
    elif what == 1:  # body bytes
        e = inner_events[victim]
        if len(e) > C.HEADER_LEN:
            at2 = r.randrange(C.HEADER_LEN, len(e))
            e[at2] = r.choice(_INTERESTING)
    elif what == 2:  # an event dropped
        del inner_events[victim]
    else:            # its type
        inner_events[victim][4] = r.randrange(256)
    new_inner = b"".join(inner_events)
    declared = len(new_inner) if r.random() < 0.8 else r.choice([0, len(new_inner) + 1, 1 << 40])
    compressed = zstandard.ZstdCompressor().compress(new_inner)
    header = bytes([2, 1, 0, 3]) + _pack_int_field(declared) + bytes([1]) + _pack_int_field(len(compressed)) + b"\0"
    crc = 4 if b.crc else 0
    ev.raw = bytearray(ev.raw[:C.HEADER_LEN]) + header + compressed + bytearray(crc)
    return _out(r, b, True)


def _packed(buf: bytes, at: int) -> tuple[int, int]:
    first = buf[at]
    if first < 251:
        return first, at + 1
    width = {252: 2, 253: 3, 254: 8}[first]
    return int.from_bytes(buf[at + 1:at + 1 + width], "little"), at + 1 + width


def _pack_int(v: int) -> bytes:
    if v < 251:
        return bytes([v])
    if v < 1 << 16:
        return b"\xfc" + v.to_bytes(2, "little")
    if v < 1 << 24:
        return b"\xfd" + v.to_bytes(3, "little")
    return b"\xfe" + v.to_bytes(8, "little")


def _pack_int_field(v: int) -> bytes:
    value = _pack_int(v)
    return _pack_int(len(value)) + value


def _out(r: random.Random, b: Binlog, repair: bool) -> bytes:
    """The mutated file: framing repaired or not; when repaired, MySQL transaction lengths forged too
    half of the time (so the checks behind the length check are reached as well)."""
    return join(b, repair=True, lengths=r.random() < 0.5) if repair else _raw_join(b)


def _raw_join(b: Binlog) -> bytes:
    return C.MAGIC + b"".join(bytes(e.raw) for e in b.events)


Mutation = Callable[[random.Random, Binlog, bytes, bool], bytes]

# Class name (as docs/reliability.md reports it) -> mutation, and whether the framing is repaired.
MUTATIONS: dict[str, tuple[Mutation, bool]] = {
    "bit flip": (bit_flip, False),
    "bit flip, CRC recomputed": (bit_flip, True),
    "body bytes overwritten, CRC recomputed": (body_bytes, True),
    "body bytes overwritten": (body_bytes, False),
    "truncated": (truncate, False),
    "event size changed": (event_size, False),
    "event size and end position changed": (event_size, True),
    "event type changed, CRC recomputed": (event_type, True),
    "events swapped": (swap, True),
    "events swapped, positions not fixed": (swap, False),
    "event duplicated": (duplicate, True),
    "event deleted": (delete, True),
    "event deleted, positions not fixed": (delete, False),
    "another server's FORMAT_DESCRIPTION": (wrong_fde, True),
    "checksum algorithm byte changed, FDE CRC recomputed": (checksum_flag, True),
    "checksum algorithm byte changed": (checksum_flag, False),
    "garbage appended": (garbage, False),
    "compressed transaction's inner events damaged": (payload_inner, True),
}


PAYLOAD_FIXTURES = ("mysql/apecloud-8.0.31-gtid-payload-rowsquery.000057",
                    "mysql/mc-8.0.32-transaction-compression.000001", "mysql/osheroff-8.0.28-compressed-update.bin")


def fixtures_for(kind: str) -> tuple[str, ...]:
    """The fixtures a mutation applies to (the compressed-transaction one needs a compressed transaction)."""
    return PAYLOAD_FIXTURES if MUTATIONS[kind][0] is payload_inner else tuple(FIXTURES)


def mutate(kind: str, name: str, seed: int) -> bytes:
    """The fixture `name` with the `kind` mutation applied, deterministically from `seed`."""
    r = random.Random(seed)
    data = (BINLOGS / name).read_bytes()
    fn, repair = MUTATIONS[kind]
    return fn(r, split(data), data, repair)


# --- running binreplay on hostile input -----------------------------------------------------

@dataclass
class Outcome:
    exit_code: int              # 0 success, else the BinreplayError's code
    message: str = ""
    transactions: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Escaped(AssertionError):
    """binreplay failed in a way bad input must never make it fail (a bug)."""


class _Timeout(BaseException):
    """Raised from SIGALRM: BaseException, so no `except Exception` in binreplay can swallow it."""


TIME_LIMIT_S = 10.0             # per run; the fixtures read in milliseconds
MEMORY_LIMIT = 768 << 20        # address space a run may add (the fixtures are at most 54 KB)


@contextlib.contextmanager
def bounded(seconds: float = TIME_LIMIT_S, memory: int = MEMORY_LIMIT) -> Iterator[None]:
    """Run the block under a wall-clock limit (SIGALRM) and an address-space limit (RLIMIT_AS, soft,
    raised back afterwards): a hang raises `_Timeout`, an unbounded allocation MemoryError."""
    def on_alarm(signum, frame):
        raise _Timeout()

    used = _address_space()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = used + memory
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    old = signal.signal(signal.SIGALRM, on_alarm)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


RUNNERS = ("reader", "plan", "dry-run")


def run_offline(kind: str, files: list[Path], memory: int = MEMORY_LIMIT, **selection) -> Outcome:
    """`kind`: the reader alone ("reader"), `binreplay plan` ("plan", both reports rendered), or
    `binreplay replay --dry-run` ("dry-run"), in this process, bounded in time and memory (address
    space: a file mapped to be read counts in full)."""
    try:
        with bounded(memory=memory):
            # As the command line does: a server's .index file stands for the files it lists.
            files = binlog_arguments([str(f) for f in files])
            return Outcome(0, transactions=_RUN[kind](files, selection))
    except BinreplayError as exc:
        return Outcome(int(exc.exit_code), str(exc))
    except _Timeout:
        raise Escaped(f"{kind}: still running after {TIME_LIMIT_S} s (a hang)") from None
    except MemoryError:
        raise Escaped(f"{kind}: allocated more than {memory >> 20} MiB") from None
    except Exception as exc:
        raise Escaped(f"{kind}: {type(exc).__name__} escaped: {exc}") from exc


def _reader(files: list[Path], selection: dict) -> int:
    from binreplay.source.reader import BinlogReader

    return sum(1 for _ in BinlogReader(files, on_warning=lambda _msg: None).transactions())


def _plan(files: list[Path], selection: dict) -> int:
    from binreplay.commands.plan.report import to_json, to_text
    from binreplay.commands.plan.survey import make_plan
    from binreplay.source.selection import SelectionArgs

    plan = make_plan(files, SelectionArgs(**selection))
    to_text(plan, 10)
    to_json(plan)
    return plan.transactions


def _dry_run(files: list[Path], selection: dict) -> int:
    from binreplay.report.progress import Reporter
    from binreplay.run import ReplayOptions, run_replay

    stream = io.StringIO()
    summary = run_replay(ReplayOptions(binlogs=files, dry_run=True, workers=1, **selection), Reporter(stream))
    assert summary.outcome == "dry-run"
    return summary.skipped


_RUN: dict[str, Callable[[list[Path], dict], int]] = {"reader": _reader, "plan": _plan, "dry-run": _dry_run}
