"""Hostile input (issue 12), property-based: the real fixtures damaged by Hypothesis-chosen mutations
(binlog_mutations.py) and read by the reader, `plan` and `replay --dry-run`, in this process.

Each must succeed or stop with a one-line BinreplayError naming the file: bad input (exit 3) or,
when the damage made a valid event binreplay refuses (an XA or LOAD DATA event type, an unknown
compression), unsupported input (exit 7). Never another exception, never more than the time limit,
never an allocation beyond the memory limit (binlog_mutations.bounded), and the three readers agree.

`make test` tries a bounded number of files, the same ones every run (BINREPLAY_FUZZ_EXAMPLES);
`-m soak` draws new ones, many more (BINREPLAY_SOAK_EXAMPLES), and with
BINREPLAY_BAD_INPUT_OUT=docs/reliability.md it writes the "Bad input" table there
(tests/support/bad_input_report.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import binlog_mutations as M
import pytest
from bad_input_report import TALLY, write_report
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CLEAN_ERRORS = (0, 3, 7)
SUITE_EXAMPLES = int(os.environ.get("BINREPLAY_FUZZ_EXAMPLES", "2000"))
SOAK_EXAMPLES = int(os.environ.get("BINREPLAY_SOAK_EXAMPLES", "20000"))


@st.composite
def single_files(draw: st.DrawFn) -> tuple[str, str, int]:
    kind = draw(st.sampled_from(sorted(M.MUTATIONS)))
    return kind, draw(st.sampled_from(M.fixtures_for(kind))), draw(st.integers(0, 2**32 - 1))


@st.composite
def pairs(draw: st.DrawFn) -> tuple[str, int, int]:
    """A mutation of one file of the rotated pair (the other intact)."""
    kind = draw(st.sampled_from(sorted(k for k in M.MUTATIONS if M.fixtures_for(k) == tuple(M.FIXTURES))))
    return kind, draw(st.integers(0, 1)), draw(st.integers(0, 2**32 - 1))


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """One directory for every example (Hypothesis runs many examples per test function)."""
    path = Path(tempfile.mkdtemp(prefix="binreplay-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    out = os.environ.get("BINREPLAY_BAD_INPUT_OUT")
    if out and TALLY.runs:
        write_report(Path(out))


def check(kind: str, files: list[Path]) -> int:
    """Run the three readers on `files`; return the exit code they agree on."""
    outcomes = {runner: M.run_offline(runner, files) for runner in M.RUNNERS}   # Escaped: a bug
    for runner, out in outcomes.items():
        assert out.exit_code in CLEAN_ERRORS, f"{runner}: exit {out.exit_code}: {out.message}"
        if out.exit_code:
            assert out.message and "\n" not in out.message, f"{runner}: not one line: {out.message!r}"
            assert any(f.name in out.message for f in files), f"{runner}: the file is not named: {out.message}"
    codes = {out.exit_code for out in outcomes.values()}
    assert len(codes) == 1, f"the readers disagree: {outcomes}"
    code = codes.pop()
    TALLY.add(kind, code, outcomes["dry-run"].message)
    return code


def _single(kind: str, name: str, seed: int, workdir: Path) -> None:
    path = workdir / "hostile.000001"
    path.write_bytes(M.mutate(kind, name, seed))
    check(kind, [path])


def _pair(kind: str, which: int, seed: int, workdir: Path) -> None:
    paths = [workdir / n for n in M.PAIR_NAMES]
    for i, (src, dst) in enumerate(zip(M.PAIR, paths)):
        dst.write_bytes(M.mutate(kind, src, seed) if i == which else (M.BINLOGS / src).read_bytes())
    check(f"{kind} (one file of a rotated pair)", paths)


_SETTINGS = dict(deadline=None, database=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                        HealthCheck.data_too_large])


# In the suite the same examples every run (a failure is never a flake); -m soak draws new ones.
@settings(max_examples=SUITE_EXAMPLES, derandomize=True, **_SETTINGS)
@given(single_files())
def test_damaged_fixture_is_read_or_refused_cleanly(workdir: Path, case: tuple[str, str, int]) -> None:
    _single(*case, workdir)


@settings(max_examples=max(SUITE_EXAMPLES // 5, 10), derandomize=True, **_SETTINGS)
@given(pairs())
def test_damaged_file_of_a_sequence_is_read_or_refused_cleanly(workdir: Path, case: tuple[str, int, int]) -> None:
    _pair(*case, workdir)


@pytest.mark.soak
@settings(max_examples=SOAK_EXAMPLES, **_SETTINGS)
@given(single_files())
def test_soak_damaged_fixtures(workdir: Path, case: tuple[str, str, int]) -> None:
    _single(*case, workdir)


@pytest.mark.soak
@settings(max_examples=max(SOAK_EXAMPLES // 5, 10), **_SETTINGS)
@given(pairs())
def test_soak_damaged_sequences(workdir: Path, case: tuple[str, int, int]) -> None:
    _pair(*case, workdir)


@pytest.mark.parametrize("name", M.FIXTURES)
def test_every_fixture_reads_cleanly_as_it_is(name: str) -> None:
    """The baseline the mutations start from: every intact fixture reads with exit 0 in all three."""
    assert check("intact fixture", [M.BINLOGS / name]) == 0


def test_the_mutations_change_the_files() -> None:
    """Each mutation class damages something (a class that never changes its file tests nothing)."""
    for kind in M.MUTATIONS:
        name = M.fixtures_for(kind)[0]
        original = (M.BINLOGS / name).read_bytes()
        assert any(M.mutate(kind, name, seed) != original for seed in range(20)), kind
