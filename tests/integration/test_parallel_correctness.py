"""Parallel replay gives exactly what serial replay gives, on the hostile cases.

Each case builds data on the source, takes a backup (a dump file), runs its workload, then
for every dependency mode and 1, 4 and 16 workers restores the backup into the target,
replays, and compares the target with the source table by table, by content.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binreplay.report.progress import Reporter
from binreplay.run import ReplayOptions, run_replay
from binreplay.server.connection import ServerConfig

from helpers import assert_same_content, binlogs_from, reset_server

MODES = ("row", "table", "commit-order")
WORKERS = (1, 4, 16)


class _Quiet(Reporter):
    def finish(self, summary) -> None:
        pass


def _dump(source, schemas, path: Path) -> tuple[str, int]:
    """A backup file of the source plus the binlog coordinates it is consistent with."""
    out = subprocess.run(["mariadb-dump", *source.client_args(), "--single-transaction", "--master-data=2",
                          "--routines", "--triggers", "--hex-blob", "--databases", *schemas],
                         capture_output=True, check=True)
    path.write_bytes(out.stdout)
    head = out.stdout[:1 << 20].decode("utf-8", "replace")
    import re

    m = re.search(r"MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)", head)
    assert m, "dump has no coordinates"
    return m.group(1), int(m.group(2))


def _restore(target, dump: Path) -> None:
    target.execute("SET SESSION foreign_key_checks = 0")
    for (schema,) in target.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"):
        if schema not in ("mysql", "information_schema", "performance_schema", "sys"):
            target.execute(f"DROP DATABASE `{schema}`")
    target.execute("SET SESSION foreign_key_checks = 1")
    with open(dump, "rb") as f:
        subprocess.run(["mariadb", *target.client_args()], stdin=f, check=True)


def replay_all_ways(source, target, tmp_path: Path, setup: list[str], workload, *, schemas=("app",),
                    modes=MODES, workers=WORKERS, **options) -> None:
    for sql in setup:
        source.execute(sql)
    dump = tmp_path / "backup.sql"
    start = _dump(source, list(schemas), dump)
    workload(source)
    files = [Path(f) for f in binlogs_from(source, start[0])]
    for mode in modes:
        for n in workers:
            _restore(target, dump)
            opts = ReplayOptions(binlogs=files, target=ServerConfig(socket=str(target.socket), user="root"),
                                 start_position=start[1], workers=n, dependency=mode, restart=True, **options)
            summary = run_replay(opts, _Quiet())
            assert summary.outcome == "complete"
            try:
                assert_same_content(source, target)
            except AssertionError as exc:
                raise AssertionError(f"--dependency {mode} --workers {n}: {exc}") from None


def in_sessions(statements_per_trx: list[list[str]], *, database: str = "app"):
    """A workload: each inner list is one source transaction."""
    def run(source) -> None:
        with source.connect(database) as conn, conn.cursor() as cur:
            for trx in statements_per_trx:
                cur.execute("BEGIN")
                for sql in trx:
                    cur.execute(sql)
                cur.execute("COMMIT")
    return run


def test_hot_row_skew(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    setup = ["CREATE DATABASE app", "CREATE TABLE app.hot (id INT PRIMARY KEY, v BIGINT, s VARCHAR(200))",
             "INSERT INTO app.hot VALUES (1, 1, ''), (2, 2, ''), (3, 3, '')",
             "CREATE TABLE app.cold (id INT PRIMARY KEY, v INT)"]
    rnd = random.Random(1)
    trxs = []
    for i in range(400):
        hot = rnd.choice([1, 1, 1, 2, 3])
        # not commutative: a reordering changes the result
        trxs.append([f"UPDATE hot SET v = (v * 31 + {i}) % 1000000007, s = RIGHT(CONCAT(s, '{i},'), 200) "
                     f"WHERE id = {hot}", f"INSERT INTO cold VALUES ({i}, {i})"])
    replay_all_ways(source, target, tmp_path, setup, in_sessions(trxs))


def _unique_key_swaps(clean_servers, tmp_path, **options) -> None:
    source, target = clean_servers
    setup = ["CREATE DATABASE app",
             "CREATE TABLE app.u (id INT PRIMARY KEY, code VARCHAR(20) NOT NULL UNIQUE, n INT) "
             "DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci",
             "INSERT INTO app.u VALUES " + ",".join(f"({i}, 'c{i}', 0)" for i in range(1, 21))]
    trxs = []
    for r in range(30):
        a, b = 1 + r % 20, 1 + (r * 7 + 3) % 20
        if a == b:
            continue
        # swap the unique values of rows a and b through a temporary value
        trxs.append([f"SELECT code INTO @ca FROM u WHERE id = {a}",
                     f"SELECT code INTO @cb FROM u WHERE id = {b}",
                     f"UPDATE u SET code = 'tmp' WHERE id = {a}",
                     f"UPDATE u SET code = @ca WHERE id = {b}",
                     f"UPDATE u SET code = @cb WHERE id = {a}"])
    for r in range(40):
        # delete then re-insert the same unique value under another primary key, in separate transactions
        trxs.append([f"DELETE FROM u WHERE code = 'same{r % 3}'"])
        trxs.append([f"INSERT INTO u VALUES ({100 + r}, 'same{r % 3}', {r})"])
    replay_all_ways(source, target, tmp_path, setup, in_sessions(trxs), **options)


def test_unique_key_swaps_and_reinserts(clean_servers, tmp_path) -> None:
    _unique_key_swaps(clean_servers, tmp_path)


def test_preserve_commit_order(clean_servers, tmp_path) -> None:
    _unique_key_swaps(clean_servers, tmp_path, modes=("row",), workers=(4, 16), preserve_commit_order=True,
                      group_max_trx=3)


def test_collation_variants_of_string_keys(clean_servers, tmp_path) -> None:
    """'abc', 'ABC ' and 'Abc' are one value to a _ci collation; 'é' and 'e' too (general_ci)."""
    source, target = clean_servers
    setup = ["CREATE DATABASE app",
             "CREATE TABLE app.ci (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE) "
             "DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci",
             "CREATE TABLE app.cs (name VARBINARY(20) PRIMARY KEY, n INT)",
             "CREATE TABLE app.pk_ci (name VARCHAR(20) PRIMARY KEY, n INT) "
             "DEFAULT CHARSET latin1 COLLATE latin1_swedish_ci"]
    variants = ["abc", "ABC ", "Abc", "aBc  ", "é", "e", "E", "ß", "s", "ss"]
    trxs = []
    for i in range(60):
        v = variants[i % len(variants)]
        w = variants[(i * 3 + 1) % len(variants)]
        trxs.append([f"DELETE FROM ci WHERE name = '{v}'"])
        trxs.append([f"INSERT INTO ci VALUES ({1000 + i}, '{v}')"])
        trxs.append([f"INSERT INTO cs VALUES ('{w}', {i}) ON DUPLICATE KEY UPDATE n = n + {i}"])
        trxs.append([f"DELETE FROM pk_ci WHERE name = '{w}'", f"INSERT INTO pk_ci VALUES ('{v}', {i})"
                     f" ON DUPLICATE KEY UPDATE n = {i}"])
    replay_all_ways(source, target, tmp_path, setup, in_sessions(trxs))


def test_null_unique_keys_and_primary_key_updates(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    setup = ["CREATE DATABASE app",
             "CREATE TABLE app.n (id INT PRIMARY KEY, a INT NULL, b INT NULL, UNIQUE KEY ab (a, b))",
             "INSERT INTO app.n VALUES (1, NULL, NULL), (2, 1, NULL), (3, 1, 1)"]
    trxs = []
    for i in range(60):
        trxs.append([f"INSERT INTO n VALUES ({10 + i}, {i % 3}, NULL)"])
        trxs.append([f"UPDATE n SET b = {100 + i} WHERE id = {10 + i}"] if i % 2
                    else [f"DELETE FROM n WHERE id = {10 + i}"])
        trxs.append([f"UPDATE n SET id = id + 1000 WHERE id = {3 + (i % 2)}" if i % 4 == 0 else
                     f"UPDATE n SET id = id - 1000 WHERE id = {1003 + (i % 2)}" if i % 4 == 2 else "DO 1"])
    replay_all_ways(source, target, tmp_path, setup, in_sessions(trxs))


def test_foreign_key_cascades(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    setup = ["CREATE DATABASE app",
             "CREATE TABLE app.p1 (id INT PRIMARY KEY, v INT)",
             "CREATE TABLE app.p2 (id INT PRIMARY KEY, v INT)",
             "CREATE TABLE app.c (id INT PRIMARY KEY, p1 INT, p2 INT, v INT, "
             " FOREIGN KEY (p1) REFERENCES app.p1(id) ON DELETE CASCADE ON UPDATE CASCADE, "
             " FOREIGN KEY (p2) REFERENCES app.p2(id) ON DELETE SET NULL ON UPDATE CASCADE)",
             "CREATE TABLE app.g (id INT PRIMARY KEY, c INT, "
             " FOREIGN KEY (c) REFERENCES app.c(id) ON DELETE CASCADE)",
             "INSERT INTO app.p1 VALUES " + ",".join(f"({i}, 0)" for i in range(1, 11)),
             "INSERT INTO app.p2 VALUES " + ",".join(f"({i}, 0)" for i in range(1, 11))]
    trxs = []
    for i in range(80):
        p = 1 + i % 10
        trxs.append([f"INSERT INTO c VALUES ({i}, {p}, {11 - p}, {i})", f"INSERT INTO g VALUES ({i}, {i})"])
        if i % 9 == 8:
            trxs.append([f"DELETE FROM p1 WHERE id = {p}", f"INSERT INTO p1 VALUES ({p}, {i})"])
        if i % 11 == 10:
            trxs.append([f"UPDATE p2 SET id = id + 100 WHERE id = {11 - p}",
                         f"INSERT INTO p2 VALUES ({11 - p}, {i})"])
    replay_all_ways(source, target, tmp_path, setup, in_sessions(trxs))


def test_tables_without_primary_key(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    setup = ["CREATE DATABASE app", "CREATE TABLE app.nopk (a INT, b VARCHAR(10))",
             "CREATE TABLE app.nopk2 (a INT, KEY (a))"]
    trxs = []
    for i in range(100):
        trxs.append([f"INSERT INTO nopk VALUES ({i % 5}, 'x{i}')", f"INSERT INTO nopk2 VALUES ({i})"])
        if i % 7 == 0:
            trxs.append([f"DELETE FROM nopk WHERE a = {i % 5} LIMIT 1"])
            trxs.append([f"UPDATE nopk2 SET a = a + 1 WHERE a < {i}"])
    replay_all_ways(source, target, tmp_path, setup, in_sessions(trxs))


def test_ddl_between_dml_and_many_tables_per_transaction(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    setup = ["CREATE DATABASE app"] + [f"CREATE TABLE app.t{i} (id INT PRIMARY KEY, v INT)" for i in range(8)]

    def workload(src) -> None:
        with src.connect("app") as conn, conn.cursor() as cur:
            for r in range(120):
                cur.execute("BEGIN")
                for i in range(8):
                    cur.execute(f"INSERT INTO t{i} (id, v) VALUES ({r}, {r * i})")
                cur.execute("COMMIT")
                if r == 40:
                    cur.execute("ALTER TABLE t3 ADD COLUMN extra VARCHAR(10) DEFAULT 'x'")
                if r == 60:
                    cur.execute("ALTER TABLE t5 DROP PRIMARY KEY, ADD PRIMARY KEY (id, v)")
                if r == 80:
                    cur.execute("CREATE TABLE t8 LIKE t0")
                    cur.execute("RENAME TABLE t1 TO t1_old, t8 TO t1")
                if r == 100:
                    cur.execute("ALTER TABLE t2 ADD UNIQUE KEY (v)")
    replay_all_ways(source, target, tmp_path, setup, workload)


def test_one_transaction_of_100k_rows(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    setup = ["CREATE DATABASE app", "CREATE TABLE app.big (id INT PRIMARY KEY, k INT, pad CHAR(60), KEY (k))",
             "CREATE TABLE app.small (id INT PRIMARY KEY, v INT)"]
    trxs = [[f"INSERT INTO small VALUES ({i}, {i})"] for i in range(50)]
    trxs.insert(10, ["INSERT INTO big SELECT seq, seq % 1000, 'p' FROM seq_1_to_100000"])
    trxs.append(["UPDATE big SET k = k + 1 WHERE id % 3 = 0"])
    replay_all_ways(source, target, tmp_path, setup, in_sessions(trxs), modes=("row", "commit-order"),
                    workers=(1, 16))


def test_a_thousand_small_tables(clean_servers, tmp_path) -> None:
    source, target = clean_servers
    source.execute("CREATE DATABASE app")
    with source.connect("app") as conn, conn.cursor() as cur:
        for i in range(1000):
            cur.execute(f"CREATE TABLE t{i} (id INT PRIMARY KEY, v INT)")
    rnd = random.Random(3)
    trxs = [[f"INSERT INTO t{rnd.randrange(1000)} VALUES ({i}, {i})",
             f"UPDATE t{rnd.randrange(1000)} SET v = v + 1"] for i in range(1500)]
    replay_all_ways(source, target, tmp_path, [], in_sessions(trxs), modes=("row", "table"), workers=(4, 16))


# -- randomized: workloads built from the ingredients above --------------------------------

INGREDIENT_SETUP = [
    "CREATE DATABASE app",
    "CREATE TABLE app.k (id INT PRIMARY KEY, u VARCHAR(10) UNIQUE, v INT) COLLATE utf8mb4_general_ci",
    "CREATE TABLE app.par (id INT PRIMARY KEY, v INT)",
    "CREATE TABLE app.chi (id INT PRIMARY KEY, par INT, v INT, "
    " FOREIGN KEY (par) REFERENCES app.par(id) ON DELETE CASCADE ON UPDATE CASCADE)",
    "CREATE TABLE app.np (a INT, b INT)",
    "INSERT INTO app.par VALUES (1, 0), (2, 0), (3, 0)",
]

_ops = st.one_of(
    st.tuples(st.just("k_upsert"), st.integers(1, 8), st.sampled_from(["a", "A", "b ", "B", "é", "e", None])),
    st.tuples(st.just("k_delete"), st.integers(1, 8)),
    st.tuples(st.just("k_move"), st.integers(1, 8), st.integers(1, 8)),
    st.tuples(st.just("chi_insert"), st.integers(1, 30), st.integers(1, 3)),
    st.tuples(st.just("par_rekey"), st.integers(1, 3)),
    st.tuples(st.just("np_insert"), st.integers(0, 3)),
    st.tuples(st.just("np_delete"), st.integers(0, 3)),
    st.tuples(st.just("ddl"), st.integers(0, 10 ** 6)),
)


def _op_sql(op) -> list[str]:
    kind = op[0]
    if kind == "k_upsert":
        u = "NULL" if op[2] is None else f"'{op[2]}'"
        return [f"DELETE FROM k WHERE u = {u}", f"REPLACE INTO k VALUES ({op[1]}, {u}, {op[1]})"]
    if kind == "k_delete":
        return [f"DELETE FROM k WHERE id = {op[1]}"]
    if kind == "k_move":
        return [f"DELETE FROM k WHERE id = {op[2]}", f"UPDATE k SET id = {op[2]} WHERE id = {op[1]}"]
    if kind == "chi_insert":
        return [f"REPLACE INTO chi VALUES ({op[1]}, {op[2]}, {op[1]})"]
    if kind == "par_rekey":
        return [f"UPDATE par SET id = id + 10 WHERE id = {op[1]}",
                f"UPDATE par SET id = id - 10 WHERE id = {op[1] + 10}"]
    if kind == "np_insert":
        return [f"INSERT INTO np VALUES ({op[1]}, {op[1]})"]
    if kind == "np_delete":
        return [f"DELETE FROM np WHERE a = {op[1]} LIMIT 1"]
    return [f"ALTER TABLE k COMMENT = 'c{op[1]}'"]


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.lists(st.lists(_ops, min_size=1, max_size=4), min_size=20, max_size=80))
def test_randomized_workloads_parallel_equals_serial(clean_servers, tmp_path_factory, workload) -> None:
    source, target = clean_servers
    from helpers import capture_baseline

    for sandbox in (source, target):  # hypothesis reruns the body: reset between examples
        reset_server(sandbox, capture_baseline(sandbox))
    trxs = []
    for group in workload:
        statements = [sql for op in group for sql in _op_sql(op)]
        trxs.append(statements)

    def run(src) -> None:
        with src.connect("app") as conn, conn.cursor() as cur:
            for statements in trxs:
                if statements[0].startswith("ALTER"):
                    cur.execute(statements[0])
                    continue
                cur.execute("BEGIN")
                for sql in statements:
                    if not sql.startswith("ALTER"):
                        cur.execute(sql)
                cur.execute("COMMIT")
    replay_all_ways(source, target, tmp_path_factory.mktemp("rand"), INGREDIENT_SETUP, run,
                    modes=("row",), workers=(8,))
