"""The apply read takes back what the validation read kept (source/validated.py): it must yield
exactly what a read of its own would, whatever was kept, and never trust a file that changed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from binreplay.errors import BadInputError
from binreplay.source.reader import BinlogReader
from binreplay.source.validated import ValidatedRead

from data import BINLOGS

FILES = sorted(p for p in BINLOGS.rglob("*") if p.is_file() and p.suffix not in (".md",) and p.name != "SHA256SUMS")
SEQUENCES = [["mysql/percona-8.0.45-gtid.000001", "mysql/percona-8.0.45-gtid.000002"],
             ["mariadb/mdbpoc-11.8.5-sbr-gtid.000007"]]


def shape(trxs) -> list[tuple]:
    return [(t.seq, t.file_index, t.start_pos, t.end_pos, t.kind, str(t.gtid), bytes(t.data),
             [(e.type_code, e.start, e.end, e.raw) for e in t.events], sorted(t.tables)) for t in trxs]


def two_reads(paths: list[Path], budget: int = 1 << 30, start_pos: int | None = None,
              apply_from: int | None = None) -> tuple[list, list, ValidatedRead]:
    """(what the validation read yielded, what the apply read yielded, the record between them)."""
    record = ValidatedRead(budget)
    first = list(BinlogReader(paths, start_pos=start_pos, record=record, on_warning=lambda m: None).transactions())
    second = list(BinlogReader(paths, start_pos=apply_from or start_pos, validated=record,
                               on_warning=lambda m: None).transactions())
    return first, second, record


def own_read(paths: list[Path], start_pos: int | None = None) -> list:
    return list(BinlogReader(paths, start_pos=start_pos, on_warning=lambda m: None).transactions())


@pytest.mark.parametrize("name", [str(p.relative_to(BINLOGS)) for p in FILES])
def test_the_apply_read_yields_what_its_own_read_would(name: str) -> None:
    path = [BINLOGS / name]
    try:
        expected = shape(own_read(path))
    except BadInputError:
        pytest.skip("the reader refuses this file on its own")
    _first, second, record = two_reads(path)
    assert shape(second) == expected
    assert all(t is None for entry in record.files.values() for t in entry.transactions)


@pytest.mark.parametrize("names", SEQUENCES)
@pytest.mark.parametrize("budget", [0, 3000, 20000])
def test_a_budget_that_runs_out_reads_the_rest_again(names: list[str], budget: int, tmp_path: Path) -> None:
    paths = []
    for i, n in enumerate(names):   # under the names their ROTATE events give
        paths.append(tmp_path / f"binlog.{i + 1:06d}")
        shutil.copy(BINLOGS / n, paths[-1])
    _first, second, record = two_reads(paths, budget=budget)
    assert shape(second) == shape(own_read(paths))
    assert record.used <= budget


def test_a_resumed_apply_read_starts_at_the_mark() -> None:
    paths = [BINLOGS / SEQUENCES[1][0]]
    everything = own_read(paths)
    mark = everything[20].end_pos
    _first, second, record = two_reads(paths, apply_from=mark)
    expected = own_read(paths, start_pos=everything[21].start_pos)
    assert [(t.start_pos, bytes(t.data)) for t in second] == [(t.start_pos, bytes(t.data)) for t in expected]
    kept = record.files[paths[0]].transactions
    assert kept[20] is not None and all(t is None for t in kept[21:])   # taken back, not read again


def validated_copy(tmp_path: Path) -> tuple[Path, Path, ValidatedRead]:
    """(the fixture, a copy of it, what a validation read of the copy kept)."""
    src = BINLOGS / SEQUENCES[1][0]
    path = tmp_path / src.name
    shutil.copy(src, path)
    record = ValidatedRead()
    list(BinlogReader([path], record=record).transactions())
    return src, path, record


def test_a_file_rewritten_after_validation_is_read_again(tmp_path: Path) -> None:
    src, path, record = validated_copy(tmp_path)
    os.utime(path, ns=(0, 12345))          # same size, another mtime: not the validated file
    assert record.kept_from(path, None) is None and record.verified_to(path) == 0
    assert shape(BinlogReader([path], validated=record).transactions()) == shape(own_read([src]))


def test_a_file_that_shrank_after_validation_is_refused(tmp_path: Path) -> None:
    _src, path, record = validated_copy(tmp_path)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(BadInputError, match="shrank"):
        list(BinlogReader([path], validated=record).transactions())


def test_what_was_taken_back_is_read_again_by_a_second_apply_read() -> None:
    paths = [BINLOGS / SEQUENCES[1][0]]
    _first, second, record = two_reads(paths)
    third = list(BinlogReader(paths, validated=record, on_warning=lambda m: None).transactions())
    assert shape(third) == shape(second)
