"""MySQL 8.3+ tagged GTIDs (uuid:tag:gno): the GTID_TAGGED event, its mysql::serialization
encoding, and --include-gtids/--exclude-gtids over tagged GTIDs.

The real event comes from a MySQL 9.6.0 binlog (tests/data/binlogs). Variants of it are built
with a small encoder written here from the format description (never used by binreplay),
checked first by reproducing the real event byte for byte.
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from binreplay.binlog import constants as C
from binreplay.binlog import gtid_events as G
from binreplay.binlog import serialization as S
from binreplay.errors import BadInputError, ExitCode, UnsupportedError
from binreplay.model import MysqlGtid
from binreplay.schedule.dependencies import CommitOrder
from binreplay.source.gtid import MysqlGtidSet
from binreplay.source.reader import BinlogReader

from data import BINLOGS as FIXTURES
from helpers import run_binreplay

FIXTURE = FIXTURES / "mysql" / "mc-9.6.0-gtid-tagged.000001"

UUID = "55778904-0299-11f1-b1b8-4ef0c4956feb"  # the fixture's server (its PREVIOUS_GTIDS: :1-13, :mytag:1-2)
HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server_id, event size, next position, flags


# ---------------------------------------------------------------- a test-only encoder

def enc_uint(v: int) -> bytes:
    for n in range(1, 9):
        if v < 1 << (7 * n):  # n bytes hold n length bits and 7n value bits
            return ((v << n) | ((1 << (n - 1)) - 1)).to_bytes(n, "little")
    return b"\xff" + v.to_bytes(8, "little")


def enc_sint(v: int) -> bytes:
    return enc_uint(v << 1 if v >= 0 else (-(v + 1) << 1) | 1)


def enc_message(fields: list[tuple[int, bytes]], last_non_ignorable: int = 0, version: int = 1) -> bytes:
    body = b"".join(enc_uint(i) + value for i, value in fields)
    head = enc_uint(version)
    tail = enc_uint(last_non_ignorable) + body
    size = len(head) + 1 + len(tail)
    while len(head) + len(enc_uint(size)) + len(tail) != size:  # the size counts its own bytes
        size = len(head) + len(enc_uint(size)) + len(tail)
    return head + enc_uint(size) + tail


def enc_tagged_gtid(ev: G.TaggedGtidEvent, *, extra: list[tuple[int, bytes]] | None = None,
                    last_non_ignorable: int = 0, omit: tuple[int, ...] = ()) -> bytes:
    """Field ids as the server numbers them; optional fields equal to their default are left out, as
    the server does."""
    fields = [
        (0, enc_uint(ev.flags)),
        (1, b"".join(enc_uint(b) for b in uuid.UUID(ev.sid).bytes)),
        (2, enc_sint(ev.gno)),
        (3, enc_uint(len(ev.tag)) + ev.tag.encode()),
        (4, enc_sint(ev.last_committed)),
        (5, enc_sint(ev.sequence_number)),
        (6, enc_uint(ev.immediate_commit_timestamp)),
    ]
    if ev.original_commit_timestamp != ev.immediate_commit_timestamp:
        fields.append((7, enc_uint(ev.original_commit_timestamp)))
    fields += [(8, enc_uint(ev.transaction_length)), (9, enc_uint(ev.immediate_server_version))]
    if ev.original_server_version != ev.immediate_server_version:
        fields.append((10, enc_uint(ev.original_server_version)))
    if ev.commit_group_ticket:
        fields.append((11, enc_uint(ev.commit_group_ticket)))
    fields = [f for f in fields if f[0] not in omit] + (extra or [])
    return enc_message(fields, last_non_ignorable)


def events_of(data: bytes) -> list[tuple[int, int, int]]:
    """(position, type, size) of each event of a binlog file."""
    out, pos = [], 4
    while pos < len(data):
        _, type_code, _, size, _, _ = HEADER.unpack_from(data, pos)
        out.append((pos, type_code, size))
        pos += size
    return out


def with_body(data: bytes, type_code: int, body: bytes) -> bytes:
    """The binlog with the body of its (first) event of `type_code` replaced: sizes, next positions
    and CRC32s of that event and the events after it are rewritten."""
    out = bytearray(data[:4])
    for pos, t, size in events_of(data):
        event = bytearray(data[pos:pos + size])
        if t == type_code:
            event = event[:19] + body + b"\0\0\0\0"
            type_code = -1
        ts, t, server_id, _, _, flags = HEADER.unpack_from(event, 0)
        HEADER.pack_into(event, 0, ts, t, server_id, len(event), len(out) + len(event), flags)
        if t != C.FORMAT_DESCRIPTION_EVENT:  # leave the FDE as written (its CRC may cover a cleared flag)
            event[-4:] = struct.pack("<I", zlib.crc32(bytes(event[:-4])))
        out += event
    return bytes(out)


def fixture_body() -> bytes:
    data = FIXTURE.read_bytes()
    pos, _, size = next(e for e in events_of(data) if e[1] == C.GTID_TAGGED_LOG_EVENT)
    return data[pos + 19:pos + size - 4]


def read_gtids(path: Path) -> list[MysqlGtid]:
    return [t.gtid for t in BinlogReader([path]).transactions()]


# ---------------------------------------------------------------- variable-length integers

# The examples of the format description (libs/mysql/serialization/readme.md), written there
# most significant byte first; the stream holds them little-endian.
@pytest.mark.parametrize("be_bits,reader,value", [
    ("00000111 11111111 11111011", S.read_uint, 65535),
    ("00001111 11111111 11110011", S.read_sint, 65535),
    ("00001111 11111111 11101011", S.read_sint, -65535),
    ("00001111 11111111 11111011", S.read_sint, -65536),
])
def test_documented_varlen_examples(be_bits, reader, value):
    stream = int(be_bits.replace(" ", ""), 2).to_bytes(3, "big")[::-1] + b"\x99"
    assert reader(stream, 0) == (value, 3)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 2**14 - 1, 2**14, 2**56 - 1, 2**56, 2**63, 2**64 - 1])
def test_varlen_unsigned_round_trip_at_every_length_boundary(value):
    raw = enc_uint(value)
    assert S.read_uint(raw, 0) == (value, len(raw))


@pytest.mark.parametrize("value", [0, -1, 1, -64, 64, -(2**63), 2**63 - 1, 1770368687207196])
def test_varlen_signed_round_trip(value):
    raw = enc_sint(value)
    assert S.read_sint(raw, 0) == (value, len(raw))


def test_a_truncated_integer_is_bad_input():
    with pytest.raises(BadInputError, match="ends inside an integer"):
        S.read_uint(enc_uint(2**40)[:-1], 0)


# ---------------------------------------------------------------- the real event

def test_fixture_event_decodes_every_field():
    ev = G.parse_tagged_gtid(fixture_body())
    assert (ev.sid, ev.tag, ev.gno) == (UUID, "mytag", 3)
    assert (ev.last_committed, ev.sequence_number) == (0, 1)
    assert ev.immediate_server_version == ev.original_server_version == 90600  # the FDE says 9.6.0
    assert ev.immediate_commit_timestamp == ev.original_commit_timestamp
    assert ev.immediate_commit_timestamp // 10**6 == 1770368687  # the event header's timestamp
    assert ev.flags == 0 and ev.commit_group_ticket == 0
    trx = next(BinlogReader([FIXTURE]).transactions())
    assert ev.transaction_length == trx.size == 296


def test_fixture_transaction_carries_the_tagged_gtid():
    (gtid,) = read_gtids(FIXTURE)
    assert gtid == MysqlGtid(UUID, 3, "mytag", 0, 1)
    assert str(gtid) == f"{UUID}:mytag:3"


def test_test_encoder_reproduces_the_real_event():
    body = fixture_body()
    assert enc_tagged_gtid(G.parse_tagged_gtid(body)) == body


def test_commit_order_reads_the_logical_clock_of_tagged_events():
    """--dependency commit-order: the fixture's transaction (last_committed 0, sequence_number 1), then
    copies of it whose tagged GTID events say they committed in its group (0, 2) or after it (1, 3)."""
    first = next(BinlogReader([FIXTURE]).transactions())
    real = G.parse_tagged_gtid(fixture_body())

    def follower(seq: int, last_committed: int, sequence_number: int):
        event = replace(real, gno=real.gno + seq, last_committed=last_committed, sequence_number=sequence_number)
        return replace(first, seq=first.seq + seq, gtid=G.parse_tagged_gtid(enc_tagged_gtid(event)).gtid)

    order = CommitOrder()
    assert order.after(first) == first.seq
    assert order.after(follower(1, 0, 2)) == first.seq       # same group: may run beside the first
    assert order.after(follower(2, 1, 3)) == first.seq + 1   # waits for sequence_number 1 only


# ---------------------------------------------------------------- synthetic variants

def synthetic(**changes) -> G.TaggedGtidEvent:
    base = dict(flags=1, sid="f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f", gno=2**62 + 5,
                tag="a_very_long_tag_of_32_characters",
                last_committed=2**40, sequence_number=2**40 + 7, immediate_commit_timestamp=1770368687207196,
                original_commit_timestamp=1770000000000001, transaction_length=70000,
                immediate_server_version=90600, original_server_version=80403, commit_group_ticket=2**63 + 1)
    base.update(changes)
    return G.TaggedGtidEvent(**base)


def test_round_trip_with_every_optional_field_and_wide_values():
    ev = synthetic()
    assert len(ev.tag) == 32
    assert G.parse_tagged_gtid(enc_tagged_gtid(ev)) == ev


def test_left_out_optional_fields_take_the_server_defaults():
    ev = synthetic(original_commit_timestamp=5, immediate_commit_timestamp=5, original_server_version=90600,
                   commit_group_ticket=0)
    body = enc_tagged_gtid(ev)
    assert len(body) < len(enc_tagged_gtid(synthetic()))
    assert G.parse_tagged_gtid(body) == ev


def test_fields_added_by_a_newer_server_are_skipped():
    ev = synthetic()
    extra = [(12, enc_uint(12345)), (13, enc_uint(3) + b"xyz"), (40, b"\xff" + bytes(8))]
    assert G.parse_tagged_gtid(enc_tagged_gtid(ev, extra=extra)) == ev
    message = S.read_message(enc_tagged_gtid(ev, extra=extra), G._TAGGED_GTID_LAYOUT, "test")
    assert message.skipped == sum(len(enc_uint(i)) + len(v) for i, v in extra)


def test_data_after_the_message_is_ignored():
    ev = synthetic()
    assert G.parse_tagged_gtid(enc_tagged_gtid(ev) + b"\x00\x07") == ev


def test_an_unknown_field_the_writer_marks_non_ignorable_is_refused():
    body = enc_tagged_gtid(synthetic(), extra=[(12, enc_uint(1))], last_non_ignorable=13)
    with pytest.raises(UnsupportedError, match="field 12 that must be understood") as info:
        G.parse_tagged_gtid(body)
    assert info.value.exit_code == ExitCode.UNSUPPORTED


def test_a_known_non_ignorable_field_is_fine():
    ev = synthetic()
    assert G.parse_tagged_gtid(enc_tagged_gtid(ev, last_non_ignorable=12)) == ev


def test_another_serialization_format_is_refused():
    with pytest.raises(UnsupportedError, match="serialization format 2"):
        G.parse_tagged_gtid(enc_message([(0, b"\x00")], version=2))


@pytest.mark.parametrize("cut", [1, 5, 20, 40])
def test_truncated_event_is_bad_input(cut):
    body = enc_tagged_gtid(synthetic())
    with pytest.raises(BadInputError, match="GTID_TAGGED"):
        G.parse_tagged_gtid(body[:-cut])


def test_a_field_running_past_the_message_is_bad_input():
    fields = [(1, bytes(16)), (2, enc_sint(1)), (3, enc_uint(10) + b"abc")]  # a 10-byte tag, 3 bytes left
    with pytest.raises(BadInputError, match="does not fit the field or the message"):
        G.parse_tagged_gtid(enc_message(fields))


@pytest.mark.parametrize("omit,why", [((1,), "missing"), ((2,), "missing"), ((3,), "missing")])
def test_an_event_without_uuid_number_or_tag_is_bad_input(omit, why):
    with pytest.raises(BadInputError, match=why):
        G.parse_tagged_gtid(enc_tagged_gtid(synthetic(), omit=omit))


@pytest.mark.parametrize("changes,why", [
    (dict(gno=0), "GNO 0 is out of range"),
    (dict(gno=2**63 - 1), "out of range"),
    (dict(tag="9lives"), "not a GTID tag"),
    (dict(tag="x" * 33), "does not fit"),
    (dict(immediate_server_version=2**32), "does not fit an unsigned 32-bit field"),
])
def test_invalid_values_are_bad_input(changes, why):
    with pytest.raises(BadInputError, match=why):
        G.parse_tagged_gtid(enc_tagged_gtid(synthetic(**changes)))


def test_upper_case_tag_is_read_in_lower_case():
    assert G.parse_tagged_gtid(enc_tagged_gtid(synthetic(tag="Ab_C"))).tag == "ab_c"


# ---------------------------------------------------------------- GTID sets with tags

def test_str_is_the_standard_form():
    assert str(MysqlGtid(UUID, 3, "mytag")) == f"{UUID}:mytag:3"
    assert str(MysqlGtid(UUID, 3)) == f"{UUID}:3"


def test_tagged_and_untagged_intervals_of_one_uuid():
    s = MysqlGtidSet(f"{UUID}:MyTag:1-5,{UUID}:7")
    assert str(s) == f"{UUID}:7:mytag:1-5"
    assert MysqlGtid(UUID, 3, "mytag") in s
    assert MysqlGtid(UUID, 3, "MYTAG") in s
    assert MysqlGtid(UUID, 7) in s
    assert MysqlGtid(UUID, 3) not in s           # untagged 3 is another GTID
    assert MysqlGtid(UUID, 7, "mytag") not in s
    assert MysqlGtid(UUID, 6, "mytag") not in s


def test_tagged_gtids_read_from_a_binlog_are_added_to_a_set():
    s = MysqlGtidSet(f"{UUID}:mytag:1-2")
    s.add(MysqlGtid(UUID, 3, "mytag"))
    assert str(s) == f"{UUID}:mytag:1-3"


# ---------------------------------------------------------------- end to end (no server)

@pytest.fixture
def two_tags(tmp_path: Path) -> Path:
    """The fixture with its transaction re-tagged `other`:9 (a different event size, so every
    later position moves), read like any binlog."""
    path = tmp_path / "binlog.000001"
    old = G.parse_tagged_gtid(fixture_body())
    body = enc_tagged_gtid(replace(old, tag="other_tag", gno=900))
    # The transaction grows with its GTID event: its length field (checked by the reader) follows.
    assert old.transaction_length is not None
    length = old.transaction_length + len(body) - len(fixture_body())
    body = enc_tagged_gtid(replace(old, tag="other_tag", gno=900, transaction_length=length))
    path.write_bytes(with_body(FIXTURE.read_bytes(), C.GTID_TAGGED_LOG_EVENT, body))
    return path


def dry_run(path: Path, *flags: str) -> int:
    proc = run_binreplay("replay", "--dry-run", str(path), *flags, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.split("dry run: ", 1)[1].split(" transactions would be applied")[0])


def test_a_rewritten_binlog_reads_back_the_new_tag(two_tags):
    assert [str(g) for g in read_gtids(two_tags)] == [f"{UUID}:other_tag:900"]


@pytest.mark.parametrize("flags,applied", [
    ((), 1),
    (("--exclude-gtids", f"{UUID}:mytag:1-3"), 0),
    (("--exclude-gtids", f"{UUID}:MYTAG:3"), 0),
    (("--exclude-gtids", f"{UUID}:1-13:mytag:1-2"), 1),   # the backup's gtid_executed (PREVIOUS_GTIDS)
    (("--exclude-gtids", f"{UUID}:3"), 1),                # untagged 3 is not mytag:3
    (("--include-gtids", f"{UUID}:mytag:3,{UUID}:7"), 1),
    (("--include-gtids", f"{UUID}:other:3"), 0),
])
def test_dry_run_filters_tagged_gtids(flags, applied):
    assert dry_run(FIXTURE, *flags) == applied


def test_dry_run_filters_the_rewritten_binlog(two_tags):
    assert dry_run(two_tags, "--exclude-gtids", f"{UUID}:mytag:1-1000") == 1
    assert dry_run(two_tags, "--exclude-gtids", f"{UUID}:other_tag:900") == 0


def test_plan_shows_the_tagged_gtid():
    proc = run_binreplay("plan", "--format", "json", str(FIXTURE), timeout=60)
    assert proc.returncode == 0, proc.stderr
    (largest,) = json.loads(proc.stdout)["largest"]
    assert largest["gtid"] == f"{UUID}:mytag:3"


@pytest.mark.parametrize("body,code,why", [
    (enc_tagged_gtid(synthetic())[:-5], ExitCode.BAD_INPUT, "corrupt GTID_TAGGED event: message of"),
    (enc_tagged_gtid(synthetic(), extra=[(12, enc_uint(1))], last_non_ignorable=13), ExitCode.UNSUPPORTED,
     "field 12 that must be understood"),
])
def test_a_bad_event_is_one_line_with_file_and_position(tmp_path, body, code, why):
    path = tmp_path / "binlog.000001"
    path.write_bytes(with_body(FIXTURE.read_bytes(), C.GTID_TAGGED_LOG_EVENT, body))
    for command in (("plan",), ("replay", "--dry-run")):
        proc = run_binreplay(*command, str(path), timeout=60)
        assert proc.returncode == code, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"binreplay: error: {path}: GTID_TAGGED event at position 245: ") and why in line


