"""Reading binlogs with and without the compiled lane (binreplay/_hotpath.c), for the tests that
compare the two paths (tests/unit/test_hotpath.py, tests/integration/test_replay_e2e.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from binreplay import hotpath
from binreplay.apply import encoders
from binreplay.errors import BinreplayError
from binreplay.model import Transaction, TrxKind
from binreplay.source import assembler
from binreplay.source.reader import BinlogReader

_FIELDS = [f.name for f in dataclasses.fields(Transaction) if f.init]


def read(paths: list[Path], *, lane: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[object, int]:
    """Everything a read gives (transactions, statistics, or the error), and how many transactions
    the lane framed."""
    framed = 0
    from_lane = assembler.Assembler._from_lane

    def counted(self: assembler.Assembler, end: int) -> Transaction:
        nonlocal framed
        framed += 1
        return from_lane(self, end)

    with monkeypatch.context() as m:
        m.setattr(assembler, "compiled", hotpath.compiled if lane else None)
        m.setattr(assembler.Assembler, "_from_lane", counted)
        reader = BinlogReader(paths, on_warning=lambda msg: None)
        out: list[object] = []
        try:
            for trx in reader.transactions():
                out.append(tuple(getattr(trx, name) for name in _FIELDS))
        except BinreplayError as exc:
            out.append((type(exc).__name__, str(exc)))
        stats = dataclasses.asdict(reader.stats)
    return (out, stats), framed


def same_either_way(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> int:
    with_lane, framed = read(paths, lane=True, monkeypatch=monkeypatch)
    without, _ = read(paths, lane=False, monkeypatch=monkeypatch)
    assert with_lane == without
    return framed


def statements_same_either_way(paths: list[Path], monkeypatch: pytest.MonkeyPatch, batch: int = 50) -> int:
    """Merged BINLOG statements of consecutive row-only transactions, `batch` at a time, built
    compiled and in Python: equal. Returns how many were built."""
    runs: list[list[Transaction]] = [[]]
    for trx in BinlogReader(paths).transactions():
        if trx.kind in (TrxKind.ROWS, TrxKind.EMPTY) and len(runs[-1]) < batch:
            runs[-1].append(trx)
        else:
            runs.append([trx] if trx.kind in (TrxKind.ROWS, TrxKind.EMPTY) else [])
    built = 0
    for run in filter(None, runs):
        fast = encoders.rows_statement(run, merge=True)
        with monkeypatch.context() as m:
            m.setattr(encoders, "compiled", None)
            assert fast == encoders.rows_statement(run, merge=True)
        built += bool(fast)
    return built
