"""Hostile input (issue 12): one regression case per class, as data.

Every file of tests/data/corrupt (made by tests/support/corrupt_corpus.py, described in its
README.md) and every special file a test can only make at run time (a FIFO, a symlink loop, a name
too long, a sparse 1 GiB FORMAT_DESCRIPTION, the same file named twice, a bad .index) goes through
one runner: the reader, `plan` and `replay --dry-run` in this process, then `binreplay replay
--dry-run` and `binreplay plan` as real commands, each bounded in time and memory. The table says
what each must end with: the exit code and a fragment of its one error line.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import binlog_mutations as M
import pytest
from corrupt_corpus import CASES, CORPUS, MYSQL_ROWS

from binreplay.binlog.column_types import RowFormatError
from binreplay.binlog.rows import RowsEvent, RowWalker
from binreplay.binlog.table_map import TableMap

from data import BINLOGS

CLI_TIMEOUT_S = 60
CLI_ADDRESS_SPACE = 3 << 30     # a sparse 1 GiB file is mapped: address space, not memory
CLI_MAX_RSS_KB = 300 << 10      # what a run may really use (a plain run: ~40 MB)


def run_cli(*args: str) -> tuple[int, str, int]:
    """`python -m binreplay ARGS` with an address-space limit: (exit code, stderr, peak RSS in KiB).
    A run past the time limit is killed and fails the test."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CLI_ADDRESS_SPACE, CLI_ADDRESS_SPACE))

    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "binreplay", *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        deadline = time.monotonic() + CLI_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                pytest.fail(f"binreplay {' '.join(args)}: still running after {CLI_TIMEOUT_S} s (a hang)")
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return proc.returncode, err.read().decode("utf-8", "replace"), usage.ru_maxrss


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:   # missing, a loop, a name too long: reading it says so
        return 0


def expect(files: list[Path], exit_code: int, message: str, *, cli: bool = True) -> None:
    """The one runner: in-process (reader, plan, dry run), then the two commands."""
    mapped = sum(map(_size, files))
    for runner in M.RUNNERS:
        # raises Escaped on a traceback, a hang or a blow-up (a file is mapped: its size is address space)
        out = M.run_offline(runner, files, memory=M.MEMORY_LIMIT + mapped)
        assert (out.exit_code, message in out.message) == (exit_code, True), f"{runner}: {out}"
        assert "\n" not in out.message
    if not cli:
        return
    for command in (["replay", "--dry-run", "--progress", "none"], ["plan"]):
        code, stderr, rss_kb = run_cli(*command, *map(str, files))
        assert "Traceback" not in stderr and "internal error" not in stderr, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("binreplay: error:")]
        assert code == exit_code, f"{command[0]}: exit {code}: {stderr}"
        if exit_code:
            assert len(errors) == 1 and message in errors[0], f"{command[0]}: {stderr}"
        else:
            assert not errors, stderr
        assert rss_kb < CLI_MAX_RSS_KB, f"{command[0]}: peak RSS {rss_kb >> 10} MiB"


# --- the corpus files --------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_file(name: str) -> None:
    case = CASES[name]
    expect([CORPUS / name], case.exit_code, case.message)


def test_corpus_is_what_the_builders_make_and_the_readme_lists() -> None:
    """The committed files are the cases (python tests/support/corrupt_corpus.py rewrites them), and
    the README has a line for each; nothing else is in the directory."""
    readme = (CORPUS / "README.md").read_text()
    files = sorted(p.name for p in CORPUS.iterdir() if p.name != "README.md")
    assert files == sorted(CASES)
    for name, case in CASES.items():
        assert (CORPUS / name).read_bytes() == case.build(), f"{name}: rerun tests/support/corrupt_corpus.py"
        assert f"`{name}`" in readme, f"{name} is not described in tests/data/corrupt/README.md"
        assert (CORPUS / name).stat().st_size < 4096


# --- what cannot be a committed file -----------------------------------------------------------

def _fifo(tmp: Path) -> list[Path]:
    os.mkfifo(tmp / "fifo.000001")
    return [tmp / "fifo.000001"]


def _fifo_index(tmp: Path) -> list[Path]:
    os.mkfifo(tmp / "mysql-bin.index")
    return [tmp / "mysql-bin.index"]


def _symlink_loop(tmp: Path) -> list[Path]:
    (tmp / "a.000001").symlink_to(tmp / "b.000001")
    (tmp / "b.000001").symlink_to(tmp / "a.000001")
    return [tmp / "a.000001"]


def _long_name(tmp: Path) -> list[Path]:
    return [tmp / ("x" * 300 + ".000001")]


def _long_index_name(tmp: Path) -> list[Path]:
    return [tmp / ("x" * 300 + ".index")]


def _long_path(tmp: Path) -> list[Path]:
    return [tmp / "/".join(["d" * 200] * 30) / "binlog.000001"]


def _same_unnumbered_file_twice(tmp: Path) -> list[Path]:
    shutil.copy(BINLOGS / MYSQL_ROWS, tmp / "binlog.bin")
    return [tmp / "binlog.bin", tmp / "binlog.bin"]


def _same_file_through_a_link(tmp: Path) -> list[Path]:
    shutil.copy(BINLOGS / MYSQL_ROWS, tmp / "binlog.bin")
    (tmp / "link.bin").symlink_to(tmp / "binlog.bin")
    return [tmp / "binlog.bin", tmp / "link.bin"]


def _sparse_huge_fde(tmp: Path) -> list[Path]:
    """A FORMAT_DESCRIPTION header saying 1 GiB, the file sparse to that size (it reads as zeros)."""
    path = tmp / "sparse.000001"
    fde = bytearray((BINLOGS / MYSQL_ROWS).read_bytes()[4:4 + 19])
    size = 1 << 30
    fde[9:13] = size.to_bytes(4, "little")
    fde[13:17] = (4 + size).to_bytes(4, "little")
    with open(path, "wb") as f:
        f.write(b"\xfebin" + fde)
        f.truncate(4 + size + 100)
    return [path]


def _index_directory(tmp: Path) -> list[Path]:
    (tmp / "mysql-bin.index").mkdir()
    return [tmp / "mysql-bin.index"]


def _index_unreadable(tmp: Path) -> list[Path]:
    path = tmp / "mysql-bin.index"
    path.write_text("./mysql-bin.000001\n")
    path.chmod(0)
    return [path]


def _index_not_utf8(tmp: Path) -> list[Path]:
    shutil.copy(CORPUS / "not-utf8.index", tmp / "mysql-bin.index")
    return [tmp / "mysql-bin.index"]


def _index_listing_a_missing_file(tmp: Path) -> list[Path]:
    (tmp / "mysql-bin.index").write_text("./mysql-bin.000001\n")
    return [tmp / "mysql-bin.index"]


def _directory(tmp: Path) -> list[Path]:
    (tmp / "dir.000001").mkdir()
    return [tmp / "dir.000001"]


# name -> (make the files in a temp dir, issue 12 class, exit code, message fragment)
SPECIAL: dict[str, tuple[Callable[[Path], list[Path]], str, int, str]] = {
    "fifo as binlog": (_fifo, "FIFO as binlog", 3, "not a regular file"),
    "fifo as .index": (_fifo_index, "FIFO as .index", 3, "not a regular file"),
    "symlink loop": (_symlink_loop, "symlink loop", 3, "symbolic links"),
    "over-long file name": (_long_name, "over-long name", 3, "name too long"),
    "over-long .index name": (_long_index_name, "over-long name", 3, "name too long"),
    "over-long path": (_long_path, "over-long name", 3, "name too long"),
    "same unnumbered file twice": (_same_unnumbered_file_twice, "same unnumbered file twice", 3, "is given twice"),
    "same file through a symlink": (_same_file_through_a_link, "same unnumbered file twice", 3, "is given twice"),
    "sparse 1 GiB FORMAT_DESCRIPTION": (_sparse_huge_fde, "sparse huge FORMAT_DESCRIPTION", 3,
                                        "not a format description"),
    ".index that is a directory": (_index_directory, "unreadable .index", 3, "(a directory)"),
    "unreadable .index": (_index_unreadable, "unreadable .index", 3, "permission denied"),
    "non-UTF-8 .index": (_index_not_utf8, "non-UTF-8 .index", 3, "not UTF-8 text"),
    ".index listing a missing file": (_index_listing_a_missing_file, "unreadable .index", 3, "not found"),
    "a directory as binlog": (_directory, "non-regular file", 3, "(a directory)"),
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_special_file(name: str, tmp_path: Path) -> None:
    make, _issue_class, exit_code, message = SPECIAL[name]
    files = make(tmp_path)
    if "unreadable" in name and os.geteuid() == 0:
        # Root reads any file (CI runs as root): read it as nobody, in this process only, once
        # every module the runners import lazily is loaded (nobody cannot read root's Python).
        for runner in M.RUNNERS:
            M.run_offline(runner, [BINLOGS / MYSQL_ROWS])
        with as_nobody():
            expect(files, exit_code, message, cli=False)
        return
    expect(files, exit_code, message)


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


# --- the row walker ------------------------------------------------------------------------------

def test_row_images_of_no_column_are_refused_not_walked_forever() -> None:
    """An image of no column takes no byte: the walker must refuse it, not loop (issue 12: ~100 MB/s)."""
    tmap = TableMap(1, "db", "t", (3, 3), (0, 0), (False, False))
    walker = RowWalker(tmap)
    rows = RowsEvent("write", 1, 1, 2, 0, None, b"\x00" * 16)
    with M.bounded(5), pytest.raises(RowFormatError, match="no column present"):
        walker.images(rows, (0,))
    update = RowsEvent("update", 1, 1, 2, 0b100, 0b1000, b"\x00" * 16)   # bits past the columns only
    with M.bounded(5), pytest.raises(RowFormatError, match="no column present"):
        walker.images(update, (0,))
    assert walker.images(RowsEvent("write", 1, 1, 2, 0, None, b""), (0,)) == []


# --- --from-backup --------------------------------------------------------------------------------

def _backup_fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "xtrabackup_binlog_info")
    return tmp / "xtrabackup_binlog_info"


def _backup_bad_gzip(tmp: Path) -> Path:
    (tmp / "dump.sql.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(40))
    return tmp / "dump.sql.gz"


def _backup_bad_zstd(tmp: Path) -> Path:
    (tmp / "dump.sql.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\xff" * 40)
    return tmp / "dump.sql.zst"


@pytest.mark.parametrize("make,message", [(_backup_fifo, "not a regular file"),
                                          (_backup_bad_gzip, "cannot read the backup metadata"),
                                          (_backup_bad_zstd, "cannot read the backup metadata")])
def test_unreadable_backup_metadata(make: Callable[[Path], Path], message: str, tmp_path: Path) -> None:
    backup = make(tmp_path)
    for runner in ("plan", "dry-run"):
        out = M.run_offline(runner, [BINLOGS / MYSQL_ROWS], from_backup=backup)
        assert (out.exit_code, message in out.message) == (3, True), out


def test_binary_json_that_points_back_at_itself_is_refused() -> None:
    """--apply sql decodes MySQL binary JSON: a container whose entry points at itself (a cycle), or
    entries sharing a value, must be bad input, not a RecursionError or text growing without bound."""
    import struct

    from binreplay.binlog.mysql_json import binary_json_to_text
    from binreplay.errors import BadInputError

    cycle = b"\x02" + struct.pack("<HH", 1, 7) + b"\x02" + struct.pack("<H", 0)
    shared = b"\x02" + struct.pack("<HH", 2, 10) + (b"\x02" + struct.pack("<H", 0)) * 2
    for doc in (cycle, shared):
        with M.bounded(5), pytest.raises(BadInputError, match="malformed MySQL binary JSON"):
            binary_json_to_text(doc)
    assert binary_json_to_text(b"\x02" + struct.pack("<HH", 1, 7) + b"\x04\x01\x00") == "[true]"
