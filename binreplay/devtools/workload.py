"""A realistic OLTP workload for the demo and benchmarks: a shop with customers, orders and DDL.

It exercises what a restore meets in practice: multi-table transactions, unique keys,
foreign keys, utf8mb4 text, DECIMAL money, DATETIME(6), JSON, NULLs, deletes, a DDL
in the middle and binlog rotations.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pymysql

SCHEMA = """
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.customers (
  id INT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  email VARCHAR(120) NOT NULL UNIQUE,
  name VARCHAR(100) NOT NULL,
  balance DECIMAL(12,2) NOT NULL DEFAULT 0,
  note TEXT NULL,
  created DATETIME(6) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE shop.products (
  id INT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  sku CHAR(12) NOT NULL UNIQUE,
  title VARCHAR(200) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  stock INT NOT NULL,
  attrs JSON NULL
) ENGINE=InnoDB;
CREATE TABLE shop.orders (
  id BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  customer_id INT UNSIGNED NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  total DECIMAL(12,2) NOT NULL DEFAULT 0,
  placed DATETIME(6) NOT NULL,
  KEY (customer_id, placed),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES shop.customers(id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE shop.order_items (
  order_id BIGINT UNSIGNED NOT NULL,
  line SMALLINT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  qty SMALLINT UNSIGNED NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  PRIMARY KEY (order_id, line),
  CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES shop.orders(id) ON DELETE CASCADE
) ENGINE=InnoDB;
"""

_NAMES = ["Zoë", "Łukasz", "José", "Aiko", "Ørjan", "Nadia", "Chen Wei", "Émile", "Søren", "Amara"]


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def create_base(conn: pymysql.connections.Connection, *, customers: int = 2000, products: int = 500,
                seed: int = 1) -> None:
    """The data that exists before the backup."""
    rnd = random.Random(seed)
    with conn.cursor() as cur:
        for stmt in _statements(SCHEMA):
            cur.execute(stmt)
        cur.executemany(
            "INSERT INTO shop.customers (email, name, balance, note, created) VALUES (%s,%s,%s,%s,NOW(6))",
            [(f"c{i}@example.com", f"{rnd.choice(_NAMES)} {i}", f"{rnd.randint(0, 99999)}.{rnd.randint(0, 99):02d}",
              None if i % 3 else f"note ✓ {i}") for i in range(customers)])
        cur.executemany(
            "INSERT INTO shop.products (sku, title, price, stock, attrs) VALUES (%s,%s,%s,%s,%s)",
            [(f"SKU{i:09d}", f"Product {i} – ☕", f"{rnd.randint(1, 500)}.{rnd.randint(0, 99):02d}",
              rnd.randint(0, 1000), None if i % 4 == 0 else f'{{"color": "c{i % 7}", "w": {i % 13}}}')
             for i in range(products)])


def run_workload(conn: pymysql.connections.Connection, transactions: int, *, seed: int = 2,
                 rotate_every: int = 0, ddl_at: int | None = None, ledger: bool = False,
                 on_progress: Callable[[int], None] | None = None) -> None:
    """Source transactions after the backup: orders, payments, restocks, cancellations, a DDL.

    `ledger` adds a keyless table with one row per transaction (fault tests count lost and
    doubled transactions with it)."""
    rnd = random.Random(seed)
    with conn.cursor() as cur:
        if ledger:
            cur.execute("CREATE TABLE IF NOT EXISTS shop.ledger (trx INT NOT NULL, at DATETIME(6) NOT NULL)")
        max_customer = _max_id(cur, "shop.customers")
        max_product = _max_id(cur, "shop.products")
        conn.autocommit(False)
        for n in range(transactions):
            if ddl_at is not None and n == ddl_at:
                conn.commit()
                cur.execute("ALTER TABLE shop.customers ADD COLUMN loyalty TINYINT UNSIGNED NULL")
            if rotate_every and n and n % rotate_every == 0:
                conn.commit()
                cur.execute("FLUSH BINARY LOGS")
            kind = rnd.random()
            if ledger:
                cur.execute("INSERT INTO shop.ledger VALUES (%s, NOW(6))", (n,))
            if kind < 0.55:  # place an order
                cid = rnd.randint(1, max_customer)
                cur.execute("INSERT INTO shop.orders (customer_id, placed) VALUES (%s, NOW(6))", (cid,))
                oid = cur.lastrowid
                lines = rnd.randint(1, 4)
                total = 0
                for line in range(1, lines + 1):
                    pid = rnd.randint(1, max_product)
                    qty = rnd.randint(1, 3)
                    price = rnd.randint(100, 50000)
                    total += qty * price
                    cur.execute("INSERT INTO shop.order_items VALUES (%s,%s,%s,%s,%s)",
                                (oid, line, pid, qty, f"{price / 100:.2f}"))
                    cur.execute("UPDATE shop.products SET stock = stock - %s WHERE id = %s", (qty, pid))
                cur.execute("UPDATE shop.orders SET total = %s WHERE id = %s", (f"{total / 100:.2f}", oid))
            elif kind < 0.80:  # a payment
                cid = rnd.randint(1, max_customer)
                cur.execute("UPDATE shop.customers SET balance = balance - 1.25, note = %s WHERE id = %s",
                            (f"paid {n} – ✓", cid))
                cur.execute("UPDATE shop.orders SET status='paid' WHERE customer_id=%s AND status='new' "
                            "ORDER BY id LIMIT 1", (cid,))
            elif kind < 0.92:  # restock with JSON
                pid = rnd.randint(1, max_product)
                cur.execute("UPDATE shop.products SET stock = stock + 50, attrs = JSON_SET(COALESCE(attrs,'{}'), "
                            "'$.restocked', %s) WHERE id = %s", (n, pid))
            elif kind < 0.98:  # a new customer
                max_customer += 1
                cur.execute("INSERT INTO shop.customers (email, name, balance, created) VALUES (%s,%s,0,NOW(6))",
                            (f"new{n}@example.com", rnd.choice(_NAMES)))
            else:  # cancel: delete an order (cascades to its items)
                cur.execute("SELECT id FROM shop.orders ORDER BY RAND(%s) LIMIT 1", (n,))
                row = cur.fetchone()
                if row:
                    cur.execute("DELETE FROM shop.orders WHERE id = %s", (row[0],))
            conn.commit()
            if on_progress and n % 500 == 0:
                on_progress(n)
        conn.autocommit(True)


def _max_id(cur: Any, table: str) -> int:
    cur.execute(f"SELECT MAX(id) FROM {table}")
    row = cur.fetchone()
    assert row is not None, "an aggregate returns a row"
    return int(row[0])
