"""The compiled hot path (binreplay/_hotpath.c) against the pure-Python path it stands in for.

The compiled functions only take the common case and hand anything else back, so every input must
give exactly what the pure-Python path gives: the same transactions (every field, every span, every
parsed body), the same reader statistics, the same error with the same message, and the same
BINLOG statements. Checked on every fixture as it is, on each MariaDB fixture damaged by every
mutation class of the bad-input tests (binlog_mutations.py), and on real 10.11 binlogs in
tests/integration/test_replay_e2e.py.
"""

from __future__ import annotations

import dataclasses
import shutil
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import binlog_mutations as M
import pytest
from hotpath_compare import same_either_way

from binreplay import hotpath
from binreplay.apply import encoders
from binreplay.model import Transaction, TrxKind
from binreplay.source.reader import BinlogReader
from binreplay.source.validated import _pack_spans, _unpack_spans, pack_spans, unpack_spans

from data import BINLOGS

MARIADB = [name for name in M.FIXTURES if name.startswith("mariadb/")]
SEEDS = range(20)


def test_the_compiled_hot_path_is_built_where_a_compiler_is() -> None:
    """`make install` builds it; a machine with a C compiler and Python's headers must have it."""
    headers = Path(sysconfig.get_paths()["include"], "Python.h").exists()
    if shutil.which("cc") and headers:
        assert hotpath.compiled is not None, "binreplay/_hotpath.c was not built: run make install"


@pytest.fixture
def compiled() -> Iterator[object]:
    if hotpath.compiled is None:
        pytest.skip("the compiled hot path is not built here")
    yield hotpath.compiled


@pytest.mark.parametrize("name", M.FIXTURES)
def test_every_fixture_reads_the_same_with_the_lane(name: str, compiled: object,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    framed = same_either_way([BINLOGS / name], monkeypatch)
    if name in ("mariadb/mc-10.5.15-annotate-rows.000001", "mariadb/zalora-10.0.15-nochecksum-rows.07"):
        assert framed, "the lane framed none of this fixture's row transactions: the test compares nothing"


@pytest.mark.parametrize("kind", sorted(k for k in M.MUTATIONS if M.fixtures_for(k) == tuple(M.FIXTURES)))
def test_damaged_mariadb_fixtures_read_the_same_with_the_lane(kind: str, compiled: object, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The lane never accepts what the pure path refuses, and never refuses differently."""
    path = tmp_path / "hostile.000001"
    for name in MARIADB:
        for seed in SEEDS:
            path.write_bytes(M.mutate(kind, name, seed))
            same_either_way([path], monkeypatch)


def row_runs(name: str) -> list[list[Transaction]]:
    """Every run of consecutive row-only transactions of a fixture, and each of its prefixes."""
    runs: list[list[Transaction]] = [[]]
    for trx in BinlogReader([BINLOGS / name]).transactions():
        if trx.kind in (TrxKind.ROWS, TrxKind.EMPTY):
            runs[-1].append(trx)
        elif runs[-1]:
            runs.append([])
    return [run[:n] for run in runs for n in range(1, len(run) + 1)]


@pytest.mark.parametrize("name", MARIADB)
def test_merged_binlog_statements_are_the_same_compiled(name: str, compiled: object,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    runs = row_runs(name)
    built = 0
    for run in runs:
        fast = encoders.rows_statement(run, merge=True)
        with monkeypatch.context() as m:
            m.setattr(encoders, "compiled", None)
            slow = encoders.rows_statement(run, merge=True)
        assert fast == slow
        built += bool(fast)
    if "rows" in name:
        assert built, "no statement was built: the test compares nothing"


def test_a_table_id_mapped_two_ways_is_left_to_the_python_path(compiled: object) -> None:
    """Two transactions mapping one table id to different tables cannot be merged: None, then the
    Python path builds the statement unmerged."""
    run = next(r for r in row_runs("mariadb/mc-10.5.15-annotate-rows.000001") if len(r) >= 2)[:2]
    first, second = (dataclasses.replace(t) for t in run)
    maps = [s for s in second.spans if s[0] == 19]
    assert maps
    data = bytearray(second.data)
    at = maps[0][2] - second.base - 4 - 1      # the last body byte of its TABLE_MAP, before the CRC
    data[at] ^= 0xFF
    second.data = bytes(data)
    assert compiled.merged_rows_statement([first, second], encoders._MERGE_KINDS, 6, 4) is None  # type: ignore[attr-defined]
    assert encoders.rows_statement([first, second], merge=True) == encoders.rows_statement([first, second],
                                                                                          merge=False)


@pytest.mark.parametrize("spans", [[], [(162, 4, 60)], [(162, 256, 300), (19, 300, 350), (30, 350, 2**40), (16, 7, 8)]])
def test_packed_spans_read_back_the_same_either_way(spans: list, compiled: object) -> None:
    assert pack_spans(spans) == _pack_spans(spans)
    assert unpack_spans(pack_spans(spans)) == _unpack_spans(_pack_spans(spans)) == spans
