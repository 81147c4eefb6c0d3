"""verify's findings as text (differences, a one-line verdict) and as one JSON document."""

from __future__ import annotations

from binreplay.commands.verify.results import Key, KeyRange, VerifyReport


def _show_key(key: Key | None) -> str:
    if key is None:
        return "-"
    shown = [f"0x{v.hex()}" if isinstance(v, bytes) else repr(v) if isinstance(v, str) else str(v) for v in key]
    return shown[0] if len(shown) == 1 else "(" + ", ".join(shown) + ")"


def describe_range(columns: list[str], r: KeyRange) -> str:
    name = columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"
    low = f"> {_show_key(r.after)}" if r.after is not None else ""
    high = f"<= {_show_key(r.upto)}" if r.upto is not None else ""
    bounds = " and ".join(b for b in (low, high) if b) or "any value"
    present = f", keys {_show_key(r.first)} .. {_show_key(r.last)}" if r.first is not None else ""
    return f"{name} {bounds}: {r.reference_rows} rows on the reference, {r.target_rows} on the target{present}"


def human_report(report: VerifyReport) -> str:
    lines = []
    for t in report.differences:
        lines.append(f"{t.name}: DIFFERENT")
        lines += [f"    {p}" for p in t.problems]
        lines += [f"    rows differ where {describe_range(t.key, r)}" for r in t.ranges]
        if t.more_ranges:
            lines.append(f"    ... more differing ranges (only the first {len(t.ranges)} are listed)")
    return "\n".join(lines)


def verdict(report: VerifyReport) -> str:
    tables = sum(1 for t in report.tables if t.table)
    diffs = report.differences
    if not diffs:
        return (f"verify: the target equals the reference: {tables} tables in {len(report.databases)} "
                f"databases, {report.rows} rows, {report.elapsed_s:.1f}s")
    names = ", ".join(t.name for t in diffs[:5]) + (", ..." if len(diffs) > 5 else "")
    return f"verify: the target differs from the reference in {len(diffs)} of {tables} tables: {names}"


def _jsonable(key: Key | None) -> list | None:
    if key is None:
        return None
    return [v if isinstance(v, (int, float, str)) or v is None else
            f"0x{v.hex()}" if isinstance(v, bytes) else str(v) for v in key]


def json_report(report: VerifyReport) -> dict:
    return {
        "equal": not report.differences,
        "databases": report.databases,
        "tables": len([t for t in report.tables if t.table]),
        "rows": report.rows,
        "elapsed_s": round(report.elapsed_s, 3),
        "differences": [{
            "database": t.schema, "table": t.table or None, "key": t.key,
            "reference_rows": t.reference_rows, "target_rows": t.target_rows, "problems": t.problems,
            "ranges": [{"after": _jsonable(r.after), "upto": _jsonable(r.upto), "first": _jsonable(r.first),
                        "last": _jsonable(r.last), "reference_rows": r.reference_rows, "target_rows": r.target_rows}
                       for r in t.ranges],
            "more_ranges": t.more_ranges,
        } for t in report.differences],
    }
