"""The whole comparison: which databases, what each server has, then every table's rows on N threads."""

from __future__ import annotations

import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from binreplay.commands.verify import catalog
from binreplay.commands.verify.checksums import TableCheck
from binreplay.commands.verify.connections import Pair, open_pairs
from binreplay.commands.verify.results import TableResult, VerifyOptions, VerifyReport
from binreplay.errors import UsageError


def verify(opts: VerifyOptions) -> VerifyReport:
    """Compare every table; raise TargetError for an unreachable server or a failing query."""
    if opts.chunk_size < 1 or opts.threads < 1:
        raise UsageError("--chunk-size and --threads must be at least 1")
    started = time.monotonic()
    with open_pairs(opts, opts.threads) as pool:
        pair = pool.get()
        databases = catalog.selected_databases(pair, opts)
        present = {"reference": catalog.databases(pair.ref), "target": catalog.databases(pair.tgt)}
        results: list[TableResult] = []
        for db in databases:
            for role, other in (("reference", "target"), ("target", "reference")):
                if db not in present[role]:
                    results.append(TableResult(db, "", problems=[f"database missing on the {role} "
                                                                 f"(present on the {other})"]))
        both = [db for db in databases if db in present["reference"] and db in present["target"]]
        ref_tables, tgt_tables = catalog.tables(pair.ref, both), catalog.tables(pair.tgt, both)
        pool.put(pair)
        work = catalog.compare_catalogs(ref_tables, tgt_tables, results)
        _compare_contents(pool, opts, work)
    results.sort(key=lambda r: (r.schema, r.table))
    return VerifyReport(databases, results, time.monotonic() - started)


def _compare_contents(pool: queue.Queue[Pair], opts: VerifyOptions, work: list[catalog.TableToCheck]) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(work), unit="table", desc="verify", file=sys.stderr, dynamic_ncols=True,
               disable=None if opts.progress else True, leave=False)

    def check(item: catalog.TableToCheck) -> None:
        pair = pool.get()
        try:
            TableCheck(pair, opts, item.result, item.columns).run()
        finally:
            pool.put(pair)
            bar.update(1)

    executor = ThreadPoolExecutor(max_workers=opts.threads, thread_name_prefix="verify")
    try:
        for future in [executor.submit(check, item) for item in work]:
            future.result()
    finally:
        # After an error or Ctrl-C, tables not started yet are not started.
        executor.shutdown(cancel_futures=True)
        bar.close()
