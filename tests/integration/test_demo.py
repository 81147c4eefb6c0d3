"""`binreplay demo` (what `make demo` runs on a fresh machine) works end to end."""

from __future__ import annotations

from helpers import run_binreplay


def test_demo_end_to_end() -> None:
    result = run_binreplay("demo", "--transactions", "300", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Recommendation" in out and "--workers" in out   # the plan step ran
    assert out.count("identical to source") == 2, out      # both replays verified by binreplay verify
    assert "mariadb-binlog | mariadb" in out and "vs pipe" in out
    assert "verify: the target equals the reference" in out
