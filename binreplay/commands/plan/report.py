"""`binreplay plan` output: an aligned text report for a person, or JSON for a runbook.

The JSON document is `dataclasses.asdict(Plan)` plus `"format": 1` and the derived `rows` of
each table; README "The plan command" documents its keys. Keys are only ever added.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict

from binreplay.commands.plan.survey import Plan, TableStats
from binreplay.schedule.limits import BATCH
from binreplay.times import shown_time

JSON_FORMAT = 1
# Busy-worker buckets of the text histogram (JSON has every count).
_BUCKETS = ((0, 1), (2, 3), (4, 7), (8, 15), (16, 16))
_SQL_SHOWN = 90


def to_json(plan: Plan) -> str:
    doc = {"format": JSON_FORMAT, **asdict(plan)}
    # The epoch timestamps as every time is shown (local, with the offset: binreplay.times).
    doc["first_time"], doc["last_time"] = (shown_time(t) if t is not None else None
                                           for t in (plan.first_timestamp, plan.last_timestamp))
    for table, stats in zip(doc["tables"], plan.tables):
        table["rows"] = stats.rows
    return json.dumps(doc, indent=2)


def to_text(plan: Plan, top: int) -> str:
    out: list[str] = []
    _summary(plan, out)
    if not plan.transactions:
        out += ["", "Nothing to replay in this selection."] + [f"warning: {w}" for w in plan.warnings]
        return "\n".join(out) + "\n"
    _volume(plan, top, out)
    _barriers(plan, top, out)
    _largest(plan, out)
    _parallelism(plan, out)
    rec = plan.recommendation
    if rec is not None:
        out += ["", "Recommendation", f"  --workers {rec.workers} --dependency {rec.dependency}",
                f"  why: {rec.reason}"]
    if plan.warnings:
        out += ["", "Warnings"] + [f"  {w}" for w in plan.warnings]
    return "\n".join(out) + "\n"


def _time(ts: int | None) -> str:
    return shown_time(ts) if ts is not None else "-"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _table(headers: list[str], rows: list[list[object]], out: list[str], align: str) -> None:
    """`align`: one letter per column, l(eft) for names and text, r(ight) for numbers."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  " + "  ".join(v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(values, widths, align))

    out.append(line(headers).rstrip())
    out.extend(line(r).rstrip() for r in cells)


def _summary(plan: Plan, out: list[str]) -> None:
    first, last = plan.first_timestamp, plan.last_timestamp
    span = last - first if first is not None and last is not None else 0
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(plan.kinds.items())) or "none"
    out += ["Binlogs", f"  files:         {len(plan.files)} ({plan.files[0]}" +
            (f" ... {plan.files[-1]})" if len(plan.files) > 1 else ")") if plan.files else "  files: none",
            f"  read from:     {plan.files_used or '-'}",
            f"  time span:     {_time(plan.first_timestamp)} .. {_time(plan.last_timestamp)} "
            f"({dt.timedelta(seconds=span)})",
            f"  transactions:  {plan.transactions} ({kinds})" +
            (f"; {plan.skipped} outside the selection" if plan.skipped else ""),
            f"  rows:          {plan.rows}",
            f"  size:          {_size(plan.bytes)} in {plan.events} events"]
    if plan.start_reason:
        out.append(f"  starts:        {plan.start_reason}")
    if plan.stop_reason:
        out.append(f"  stops:         {plan.stop_reason}")
    if plan.compressed:
        out.append(f"  note:          {plan.compressed} compressed MySQL transactions: replay cannot apply them yet "
                   "(exit 7)")


def _volume(plan: Plan, top: int, out: list[str]) -> None:
    out += ["", "Databases (by bytes)"]
    _table(["database", "trx", "rows", "bytes", "statements"],
           [[d.database or "(none)", d.transactions, d.rows, _size(d.bytes), d.statements]
            for d in plan.databases[:top]], out, "lrrrr")
    _more(len(plan.databases), top, "databases", out)
    out += ["", "Tables (by bytes of row events)"]
    _table(["table", "trx", "rows", "insert", "update", "delete", "bytes", "row keys here"],
           [[f"{t.database}.{t.table}", t.transactions, _rows(t), t.inserts, t.updates, t.deletes, _size(t.bytes),
             _key_label(t)] for t in plan.tables[:top]], out, "lrrrrrrl")
    _more(len(plan.tables), top, "tables", out)


def _shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _rows(t: TableStats) -> str:
    return f"{t.rows}+?" if t.uncounted_events else str(t.rows)


def _key_label(t: TableStats) -> str:
    return "primary key" if t.row_keys == "primary key" else "whole table"


def _more(total: int, top: int, what: str, out: list[str]) -> None:
    if total > top:
        out.append(f"  ... {total - top} more {what} (--top, or --format json for all)")


def _barriers(plan: Plan, top: int, out: list[str]) -> None:
    out += ["", f"Barriers (run alone, in order): {sum(plan.barriers.values())}"]
    out.extend(f"  {reason}: {n}" for reason, n in sorted(plan.barriers.items(), key=lambda kv: -kv[1]))
    if plan.ddl:
        out += ["", f"DDL ({len(plan.ddl)})"]
        _table(["position", "time", "database", "statement"],
               [[d.position, _time(d.timestamp), d.database or "-", _shorten(d.sql, _SQL_SHOWN)]
                for d in plan.ddl[:top]], out, "llll")
        _more(len(plan.ddl), top, "statements", out)


def _largest(plan: Plan, out: list[str]) -> None:
    out += ["", "Largest transactions"]
    _table(["position", "time", "bytes", "rows", "tables"],
           [[t.position, _time(t.timestamp), _size(t.bytes), t.rows, ", ".join(t.tables[:3]) +
             (f" +{len(t.tables) - 3}" if len(t.tables) > 3 else "")] for t in plan.largest], out, "llrrl")


def _parallelism(plan: Plan, out: list[str]) -> None:
    out += ["", "Parallelism (simulated replay: the real scheduler, groups of up to "
            f"{BATCH.max_transactions:,} per commit; speed-up against 1 worker)"]
    headers = ["mode", "workers", "speed-up", "busy avg"] + [
        f"busy {lo}" if lo == hi else f"busy {lo}-{hi}" for lo, hi in _BUCKETS]
    rows = []
    for m in plan.modes:
        for w in m.workers:
            shares = [sum(w.busy_histogram[lo:hi + 1]) if lo < len(w.busy_histogram) else None for lo, hi in _BUCKETS]
            rows.append([m.mode, w.workers, f"{w.speedup:.2f}x", f"{w.average_busy:.1f}"] +
                        ["" if s is None else f"{s:.0%}" for s in shares])
    _table(headers, rows, out, "lrrr" + "r" * len(_BUCKETS))
    out += ["", "  critical path (longest dependency chain, unlimited workers):"]
    _table(["mode", "longest chain", "share of work", "speed-up bound"],
           [[m.mode, f"{m.longest_chain} trx", f"{m.critical_path_share:.1%}", f"{m.bound:.1f}x"] for m in plan.modes],
           out, "lrrr")
    if plan.row_key_notes:
        out += ["", "  row keys without a server:"] + [f"  - {n}" for n in plan.row_key_notes]
