"""Benchmark workloads: the data before the backup, then concurrent source traffic after it.

Every workload has a `setup` (runs before the backup, on a relaxed source) and a `run`
(the traffic whose binlog is replayed). The traffic comes from several client *processes*
(forked, one connection each) committing at the same time on a durable source
(sync_binlog=1, innodb_flush_log_at_trx_commit=1), so the source's binlog group commit
really groups transactions and MariaDB writes commit_id into their GTID events, as on a
busy production primary. A client whose transaction hits a deadlock or lock wait timeout
rolls it back and retries it (rolled-back work never reaches the binlog).

Workloads (each scaled by `quick`, then by `--scale`):

- oltp          sysbench oltp_write_only: 8 tables x 50,000 rows, 20,000 transactions from 8
                clients, each 2 UPDATEs (one on the indexed column k), 1 DELETE and 1 INSERT of
                the same id, on random tables; plus, from 2 more clients at the same time, 5,000
                two-statement transactions (an INSERT into a journal table, a DELETE from a queue
                table). The same size with and without `quick`: `make bench` measures 25,000.
- bulk          large multi-row transactions (hundreds of rows each: INSERT, range UPDATE of
                indexed columns, range DELETE) on tables with three secondary indexes.
- hot           hot-row skew: 90% of transactions update one of 4 hot counter rows (plus a
                random account and an append-only ledger row).
- tables1000    1,000 small tables; each transaction touches 2-3 random tables.
- ddl           oltp-like traffic on 4 tables with DDL in the middle (ALTER ADD COLUMN,
                CREATE INDEX, CREATE TABLE, CREATE TABLE ... SELECT, RENAME, DROP).

And, for `run.py --large` only (not in WORKLOADS):

- large         1,000,000 transactions, each a 6-row UPDATE (full row images, ~2.5 KB of
                binlog each: >= 2 GB in all), written by a stored procedure looping inside the
                source from 8 connections at once: a real MariaDB binlog, generated in minutes
                rather than the hours Python clients would need.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pymysql

from binreplay.devtools.sandbox import Sandbox

RETRY_CODES = (1205, 1213)          # lock wait timeout, deadlock

# one transaction: (cursor, rng, client number, transaction number) -> None
TrxBody = Callable[[pymysql.cursors.Cursor, random.Random, int, int], None]


@dataclass(frozen=True)
class Scale:
    transactions: int
    clients: int
    rows: int = 0          # rows per table before the backup
    tables: int = 0
    queue_transactions: int = 0   # oltp: the journal-insert + queue-delete transactions
    queue_clients: int = 0

    @property
    def total_transactions(self) -> int:
        return self.transactions + self.queue_transactions

    def scaled(self, factor: float) -> Scale:
        """`--scale`: fewer (or more) transactions and rows, same tables and clients, for trying the harness.

        Rows never go below 100 (or the unscaled count if smaller): the workloads pick random ids
        in ranges of a few rows and need some room.
        """
        if factor == 1.0:
            return self
        return replace(self, transactions=max(self.clients, round(self.transactions * factor)),
                       rows=max(min(self.rows, 100), round(self.rows * factor)),
                       queue_transactions=(max(self.queue_clients, round(self.queue_transactions * factor))
                                           if self.queue_transactions else 0))


@dataclass
class Workload:
    name: str
    title: str
    databases: list[str]
    quick: Scale
    full: Scale
    setup: Callable[[Sandbox, Scale], None]
    run: Callable[[Sandbox, Scale], None]
    # The traffic runs on a durable source (sync_binlog=1) so its group commit groups, as on a busy
    # primary; `large` relaxes it: a million fsyncs would take longer than the replay being measured.
    durable_source: bool = True

    def scale(self, quick: bool, factor: float = 1.0) -> Scale:
        return (self.quick if quick else self.full).scaled(factor)


# ---- the client driver ------------------------------------------------------------------------------

def _client(socket: str, body: TrxBody, client: int, count: int, seed: int,
            done: multiprocessing.Value | None) -> None:  # type: ignore[name-defined]
    rnd = random.Random(seed * 1000 + client)
    conn = pymysql.connect(unix_socket=socket, user="root", password="", autocommit=True, charset="utf8mb4")
    cur = conn.cursor()
    for n in range(count):
        for attempt in range(100):
            state = rnd.getstate()
            try:
                cur.execute("BEGIN")
                body(cur, rnd, client, n)
                cur.execute("COMMIT")
                break
            except pymysql.err.OperationalError as exc:
                if exc.args[0] not in RETRY_CODES or attempt == 99:
                    raise
                cur.execute("ROLLBACK")
                rnd.setstate(state)       # retry the very same transaction
                time.sleep(0.001 * (attempt + 1))
        if done is not None:
            with done.get_lock():
                done.value += 1
    conn.close()


@dataclass(frozen=True)
class ClientGroup:
    """`transactions` transactions of `body`, spread over `clients` processes (client numbers 0..clients-1)."""
    body: TrxBody
    transactions: int
    clients: int
    seed: int = 7


def run_clients(source: Sandbox, body: TrxBody, transactions: int, clients: int, *, seed: int = 7,
                on_progress: Callable[[int], None] | None = None) -> None:
    """`transactions` transactions of `body`, spread over `clients` concurrent processes.

    `on_progress(done)` is called in this process about every 10 ms while they run
    (the DDL workload issues its statements from there, concurrently with the traffic).
    """
    run_client_groups(source, [ClientGroup(body, transactions, clients, seed)], on_progress=on_progress)


def run_client_groups(source: Sandbox, groups: list[ClientGroup], *,
                      on_progress: Callable[[int], None] | None = None) -> None:
    """Every group's clients at the same time, so their transactions interleave in the binlog."""
    ctx = multiprocessing.get_context("fork")
    done = ctx.Value("l", 0)
    procs = []
    for g in groups:
        per = [g.transactions // g.clients + (1 if i < g.transactions % g.clients else 0) for i in range(g.clients)]
        procs += [ctx.Process(target=_client, args=(str(source.socket), g.body, i, per[i], g.seed, done), daemon=True)
                  for i in range(g.clients)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            if on_progress is not None:
                on_progress(done.value)
            time.sleep(0.01)
        if on_progress is not None:
            on_progress(done.value)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"workload client(s) failed with exit codes {failed}")


def _executemany_chunks(cur, sql: str, rows: list[tuple], chunk: int = 2000) -> None:
    for i in range(0, len(rows), chunk):
        cur.executemany(sql, rows[i:i + chunk])


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _pad(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choices(_ALPHABET, k=n))


# ---- oltp: sysbench oltp_write_only ------------------------------------------------------------------

SB_TABLE = """CREATE TABLE sbtest.sbtest{i} (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  k INT UNSIGNED NOT NULL DEFAULT 0,
  c CHAR(120) NOT NULL DEFAULT '',
  pad CHAR(60) NOT NULL DEFAULT '',
  KEY k_{i} (k)
) ENGINE=InnoDB"""


QUEUE_TABLES = [
    "CREATE TABLE sbtest.queue (id INT UNSIGNED NOT NULL PRIMARY KEY, payload VARCHAR(100) NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE sbtest.journal (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
    "queue_id INT UNSIGNED NOT NULL, client TINYINT UNSIGNED NOT NULL, note VARCHAR(64) NOT NULL, "
    "at DATETIME(6) NOT NULL, KEY (queue_id)) ENGINE=InnoDB",
]


def _sb_setup(source: Sandbox, s: Scale) -> None:
    rnd = random.Random(1)
    with source.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE sbtest")
        for i in range(1, s.tables + 1):
            cur.execute(SB_TABLE.format(i=i))
            rows = [(n, rnd.randint(1, s.rows), _pad(rnd, 119), _pad(rnd, 59)) for n in range(1, s.rows + 1)]
            _executemany_chunks(cur, f"INSERT INTO sbtest.sbtest{i} (id, k, c, pad) VALUES (%s,%s,%s,%s)", rows)
        for stmt in QUEUE_TABLES:
            cur.execute(stmt)
        # One queued item per queue transaction: each transaction consumes its own item.
        if s.queue_transactions:
            cur.execute(f"INSERT INTO sbtest.queue SELECT seq, CONCAT('job ', seq, ' ', MD5(seq)) "
                        f"FROM sbtest.seq_1_to_{s.queue_transactions}")


def _sb_body(tables: int, rows: int) -> TrxBody:
    def body(cur, rnd: random.Random, _client: int, _n: int) -> None:
        t = rnd.randint(1, tables)
        cur.execute(f"UPDATE sbtest.sbtest{t} SET k=k+1 WHERE id=%s", (rnd.randint(1, rows),))
        t = rnd.randint(1, tables)
        cur.execute(f"UPDATE sbtest.sbtest{t} SET c=%s WHERE id=%s", (_pad(rnd, 119), rnd.randint(1, rows)))
        t = rnd.randint(1, tables)
        i = rnd.randint(1, rows)
        cur.execute(f"DELETE FROM sbtest.sbtest{t} WHERE id=%s", (i,))
        cur.execute(f"INSERT INTO sbtest.sbtest{t} (id, k, c, pad) VALUES (%s,%s,%s,%s)",
                    (i, rnd.randint(1, rows), _pad(rnd, 119), _pad(rnd, 59)))
    return body


def _queue_body(clients: int) -> TrxBody:
    """Consume queue item number n*clients+client+1: a journal INSERT (auto-increment id), then the DELETE."""
    def body(cur, rnd: random.Random, client: int, n: int) -> None:
        item = n * clients + client + 1
        cur.execute("INSERT INTO sbtest.journal (queue_id, client, note, at) VALUES (%s, %s, %s, NOW(6))",
                    (item, client, f"done {_pad(rnd, 20)}"))
        cur.execute("DELETE FROM sbtest.queue WHERE id=%s", (item,))
    return body


def _sb_run(source: Sandbox, s: Scale) -> None:
    groups = [ClientGroup(_sb_body(s.tables, s.rows), s.transactions, s.clients)]
    if s.queue_transactions:
        groups.append(ClientGroup(_queue_body(s.queue_clients), s.queue_transactions, s.queue_clients, seed=11))
    run_client_groups(source, groups)


# ---- bulk: large multi-row transactions, secondary indexes --------------------------------------------

BULK_TABLE = """CREATE TABLE bulk.orders{i} (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  customer INT UNSIGNED NOT NULL,
  status TINYINT UNSIGNED NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  ref VARCHAR(40) NOT NULL,
  note VARCHAR(200) NULL,
  created DATETIME(6) NOT NULL,
  UNIQUE KEY uk_ref (ref),
  KEY k_customer (customer, created),
  KEY k_status (status, amount)
) ENGINE=InnoDB"""

BULK_BATCH = 400      # rows per statement


def _bulk_row(rnd: random.Random, oid: int) -> tuple:
    # Every value a parameter: pymysql's executemany then sends one multi-row INSERT.
    created = (f"2026-01-{rnd.randint(1, 28):02d} {rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:00."
               f"{oid % 1000000:06d}")
    return (oid, rnd.randint(1, 50000), rnd.randint(0, 5), f"{rnd.randint(1, 99999)}.{rnd.randint(0, 99):02d}",
            f"R{oid:012d}-{rnd.randint(0, 999999):06d}", None if oid % 5 == 0 else _pad(rnd, rnd.randint(10, 80)),
            created)


def _bulk_setup(source: Sandbox, s: Scale) -> None:
    rnd = random.Random(3)
    with source.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE bulk")
        for i in range(1, s.tables + 1):
            cur.execute(BULK_TABLE.format(i=i))
            rows = [_bulk_row(rnd, n) for n in range(1, s.rows + 1)]
            _executemany_chunks(cur, f"INSERT INTO bulk.orders{i} (id, customer, status, amount, ref, note, created) "
                                     "VALUES (%s,%s,%s,%s,%s,%s,%s)", rows)


def _bulk_body(tables: int, rows: int, clients: int) -> TrxBody:
    def body(cur, rnd: random.Random, client: int, n: int) -> None:
        t = rnd.randint(1, tables)
        kind = rnd.random()
        if kind < 0.4:        # insert a batch of new orders (ids disjoint per client and transaction)
            base = rows + 1 + (n * clients + client) * BULK_BATCH
            values = [_bulk_row(rnd, base + j) for j in range(BULK_BATCH)]
            cur.executemany(f"INSERT INTO bulk.orders{t} (id, customer, status, amount, ref, note, created) "
                            "VALUES (%s,%s,%s,%s,%s,%s,%s)", values)
        elif kind < 0.85:     # re-price and re-status a range (indexed columns change)
            lo = rnd.randint(1, max(rows - BULK_BATCH, 1))
            cur.execute(f"UPDATE bulk.orders{t} SET status=(status+1)%%6, amount=amount*1.01, "
                        f"note=CONCAT('upd ', %s) WHERE id BETWEEN %s AND %s", (n, lo, lo + BULK_BATCH - 1))
        else:                 # archive: delete a range
            lo = rnd.randint(1, max(rows - BULK_BATCH // 2, 1))
            cur.execute(f"DELETE FROM bulk.orders{t} WHERE id BETWEEN %s AND %s", (lo, lo + BULK_BATCH // 2 - 1))
    return body


def _bulk_run(source: Sandbox, s: Scale) -> None:
    run_clients(source, _bulk_body(s.tables, s.rows, s.clients), s.transactions, s.clients)


# ---- hot: hot-row skew ---------------------------------------------------------------------------------

HOT_SCHEMA = [
    "CREATE DATABASE hot",
    "CREATE TABLE hot.counters (id INT PRIMARY KEY, hits BIGINT NOT NULL, updated DATETIME(6) NULL) ENGINE=InnoDB",
    "CREATE TABLE hot.accounts (id INT PRIMARY KEY, balance DECIMAL(14,2) NOT NULL, version INT NOT NULL, "
    "KEY (balance)) ENGINE=InnoDB",
    "CREATE TABLE hot.ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, account INT NOT NULL, delta DECIMAL(10,2) "
    "NOT NULL, at DATETIME(6) NOT NULL, KEY (account)) ENGINE=InnoDB",
]
HOT_ROWS = 4


def _hot_setup(source: Sandbox, s: Scale) -> None:
    with source.connect() as conn, conn.cursor() as cur:
        for stmt in HOT_SCHEMA:
            cur.execute(stmt)
        cur.execute(f"INSERT INTO hot.counters SELECT seq, 0, NULL FROM hot.seq_1_to_{HOT_ROWS}")
        cur.execute(f"INSERT INTO hot.accounts SELECT seq, 1000, 0 FROM hot.seq_1_to_{s.rows}")


def _hot_body(rows: int) -> TrxBody:
    def body(cur, rnd: random.Random, _client: int, _n: int) -> None:
        a = rnd.randint(1, rows)
        delta = f"{rnd.randint(-500, 500) / 100:.2f}"
        if rnd.random() < 0.9:
            cur.execute("UPDATE hot.counters SET hits=hits+1, updated=NOW(6) WHERE id=%s", (rnd.randint(1, HOT_ROWS),))
        cur.execute("UPDATE hot.accounts SET balance=balance+%s, version=version+1 WHERE id=%s", (delta, a))
        cur.execute("INSERT INTO hot.ledger (account, delta, at) VALUES (%s, %s, NOW(6))", (a, delta))
    return body


def _hot_run(source: Sandbox, s: Scale) -> None:
    run_clients(source, _hot_body(s.rows), s.transactions, s.clients)


# ---- tables1000: many small tables ---------------------------------------------------------------------

def _many_setup(source: Sandbox, s: Scale) -> None:
    with source.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE many")
        for i in range(s.tables):
            cur.execute(f"CREATE TABLE many.t{i:04d} (id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(32) NOT NULL, "
                        "KEY (v)) ENGINE=InnoDB")
            cur.execute(f"INSERT INTO many.t{i:04d} SELECT seq, seq, CONCAT('r', seq) FROM many.seq_1_to_{s.rows}")


def _many_body(tables: int, rows: int) -> TrxBody:
    def body(cur, rnd: random.Random, _client: int, n: int) -> None:
        for _ in range(rnd.randint(2, 3)):
            t = rnd.randrange(tables)
            cur.execute(f"UPDATE many.t{t:04d} SET v=v+1, s=%s WHERE id=%s", (f"u{n}", rnd.randint(1, rows)))
    return body


def _many_run(source: Sandbox, s: Scale) -> None:
    run_clients(source, _many_body(s.tables, s.rows), s.transactions, s.clients)


# ---- ddl: traffic with DDL in the middle --------------------------------------------------------------

def _ddl_setup(source: Sandbox, s: Scale) -> None:
    rnd = random.Random(5)
    with source.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE app")
        for i in range(1, s.tables + 1):
            cur.execute(f"CREATE TABLE app.t{i} (id INT UNSIGNED NOT NULL PRIMARY KEY, k INT NOT NULL, "
                        "c VARCHAR(120) NOT NULL, KEY (k)) ENGINE=InnoDB")
            _executemany_chunks(cur, f"INSERT INTO app.t{i} VALUES (%s,%s,%s)",
                                [(n, rnd.randint(1, 1000), _pad(rnd, 40)) for n in range(1, s.rows + 1)])


DDL_SCRIPT = [  # (fraction of the traffic done, statement)
    (0.15, "ALTER TABLE app.t1 ADD COLUMN flag TINYINT NOT NULL DEFAULT 1"),
    (0.25, "CREATE TABLE app.audit (id INT AUTO_INCREMENT PRIMARY KEY, t VARCHAR(10), n INT, "
           "at DATETIME(6)) ENGINE=InnoDB"),
    (0.30, "INSERT INTO app.audit (t, n, at) SELECT 't2', id, NOW(6) FROM app.t2 WHERE id <= 500"),
    (0.40, "CREATE INDEX k_c ON app.t2 (c(20))"),
    (0.50, "CREATE TABLE app.snapshot ENGINE=InnoDB SELECT id, k FROM app.t3 WHERE id <= 2000"),
    (0.55, "ALTER TABLE app.t4 ADD COLUMN extra VARCHAR(20) NULL, ALGORITHM=COPY"),
    (0.65, "RENAME TABLE app.snapshot TO app.snapshot_old"),
    (0.75, "ALTER TABLE app.t1 DROP COLUMN flag"),
    (0.85, "DROP TABLE app.snapshot_old"),
    (0.90, "TRUNCATE TABLE app.audit"),
]


def _ddl_body(tables: int, rows: int) -> TrxBody:
    def body(cur, rnd: random.Random, _client: int, _n: int) -> None:
        t = rnd.randint(1, tables)
        cur.execute(f"UPDATE app.t{t} SET k=k+1 WHERE id=%s", (rnd.randint(1, rows),))
        t = rnd.randint(1, tables)
        cur.execute(f"UPDATE app.t{t} SET c=%s WHERE id=%s", (_pad(rnd, 40), rnd.randint(1, rows)))
        t = rnd.randint(1, tables)
        i = rnd.randint(1, rows)
        cur.execute(f"DELETE FROM app.t{t} WHERE id=%s", (i,))
        cur.execute(f"INSERT INTO app.t{t} (id, k, c) VALUES (%s,%s,%s)", (i, rnd.randint(1, 1000), _pad(rnd, 40)))
    return body


def _ddl_run(source: Sandbox, s: Scale) -> None:
    pending = list(DDL_SCRIPT)
    conn = source.connect()
    try:
        def on_progress(done: int) -> None:
            while pending and done >= pending[0][0] * s.transactions:
                conn.cursor().execute(pending.pop(0)[1])
        run_clients(source, _ddl_body(s.tables, s.rows), s.transactions, s.clients, on_progress=on_progress)
        while pending:   # clients finished before the last thresholds were seen
            conn.cursor().execute(pending.pop(0)[1])
    finally:
        conn.close()


# ---- large: >= 1,000,000 transactions, >= 2 GB of binlog (run.py --large) ----------------------------

LARGE_TABLE = """CREATE TABLE large.rows (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  k INT UNSIGNED NOT NULL,
  c CHAR(120) NOT NULL,
  pad CHAR(60) NOT NULL,
  KEY (k)
) ENGINE=InnoDB"""
LARGE_ROWS_PER_TRX = 6    # ~2.5 KB of binlog per transaction with full before and after images

# One transaction per iteration, committed inside the procedure: the server writes each to the binlog as
# its own transaction. RAND() makes every row's new value different; the binlog has the values (ROW format).
LARGE_PROC = f"""CREATE PROCEDURE large.churn(IN n INT, IN nrows INT)
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE failed INT DEFAULT 0;
  DECLARE lo INT;
  DECLARE CONTINUE HANDLER FOR 1205, 1213 SET failed = 1;
  WHILE done < n DO
    SET failed = 0;
    SET lo = 1 + FLOOR(RAND() * (nrows - {LARGE_ROWS_PER_TRX}));
    START TRANSACTION;
    UPDATE large.rows SET k = k + 1,
        c = CONCAT(MD5(RAND()), MD5(RAND()), MD5(RAND()), LEFT(MD5(RAND()), 24))
      WHERE id BETWEEN lo AND lo + {LARGE_ROWS_PER_TRX - 1};
    IF failed = 0 THEN
      COMMIT;
      SET done = done + 1;
    ELSE
      ROLLBACK;
    END IF;
  END WHILE;
END"""


def _large_setup(source: Sandbox, s: Scale) -> None:
    with source.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE large")
        cur.execute(LARGE_TABLE)
        cur.execute("INSERT INTO large.rows SELECT seq, seq % 1000, RPAD(MD5(seq), 120, 'c'), RPAD(seq, 60, 'p') "
                    f"FROM large.seq_1_to_{s.rows}")
        cur.execute(LARGE_PROC)


def _large_run(source: Sandbox, s: Scale) -> None:
    """`s.clients` connections CALL the procedure at once, each for its share of the transactions."""
    per = [s.transactions // s.clients + (1 if i < s.transactions % s.clients else 0) for i in range(s.clients)]
    errors: list[BaseException] = []

    def call(n: int) -> None:
        try:
            with source.connect() as conn, conn.cursor() as cur:
                cur.execute("CALL large.churn(%s, %s)", (n, s.rows))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(n,), daemon=True) for n in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"large workload: {errors[0]}")


LARGE = Workload("large", f"{LARGE_ROWS_PER_TRX}-row UPDATEs (full row images) from a stored procedure, 8 connections",
                 ["large"],
                 quick=Scale(transactions=1_000_000, clients=8, rows=800_000),
                 full=Scale(transactions=1_000_000, clients=8, rows=800_000),
                 setup=_large_setup, run=_large_run, durable_source=False)


# ---- the list ----------------------------------------------------------------------------------------

WORKLOADS: list[Workload] = [
    # The same size in quick and full runs: `make bench` (quick) must measure >= 25,000 OLTP transactions.
    Workload("oltp", "sysbench-like oltp_write_only, 8 tables x 50,000 rows, 8 clients; plus journal-insert + "
             "queue-delete transactions from 2 clients", ["sbtest"],
             quick=Scale(transactions=20000, clients=8, rows=50000, tables=8, queue_transactions=5000,
                         queue_clients=2),
             full=Scale(transactions=20000, clients=8, rows=50000, tables=8, queue_transactions=5000,
                        queue_clients=2),
             setup=_sb_setup, run=_sb_run),
    Workload("bulk", f"large transactions ({BULK_BATCH}-row INSERT / range UPDATE / range DELETE), 3 secondary "
             "indexes, 4 clients", ["bulk"],
             quick=Scale(transactions=300, clients=4, rows=20000, tables=4),
             full=Scale(transactions=1500, clients=4, rows=50000, tables=4),
             setup=_bulk_setup, run=_bulk_run),
    Workload("hot", f"hot-row skew: 90% of transactions update one of {HOT_ROWS} counter rows, 8 clients", ["hot"],
             quick=Scale(transactions=8000, clients=8, rows=10000),
             full=Scale(transactions=20000, clients=8, rows=50000),
             setup=_hot_setup, run=_hot_run),
    Workload("tables1000", "1,000 small tables, 2-3 random tables per transaction, 8 clients", ["many"],
             quick=Scale(transactions=5000, clients=8, rows=20, tables=1000),
             full=Scale(transactions=15000, clients=8, rows=50, tables=1000),
             setup=_many_setup, run=_many_run),
    Workload("ddl", "oltp-like traffic on 4 tables with 10 DDL statements in the middle, 8 clients", ["app"],
             quick=Scale(transactions=6000, clients=8, rows=5000, tables=4),
             full=Scale(transactions=15000, clients=8, rows=20000, tables=4),
             setup=_ddl_setup, run=_ddl_run),
]

BY_NAME = {w.name: w for w in WORKLOADS}
