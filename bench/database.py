"""The run's database as the driver sees it: seeding, resetting between scenarios, the
broker's queue, and the numbers read back from the orders' own rows and timestamps."""

import time

import psycopg

from bench.order_states import FAILURE_EMAIL_STATES, FINAL_STATES
from bench.stack import CLUSTER_NAME, PG_URL, REDIS_BASE, BenchError

PRODUCTS = 1000
HOT_SKU = "BENCH-HOT"
PLENTY = 10_000_000  # units per product: the random-product runs never run out


class Db:
    """A direct connection to the run's database, for seeding, resetting and reading results."""

    def __init__(self, name: str, *, server: str = PG_URL, redis_url: str = REDIS_BASE):
        self.name = name
        self.redis_url = redis_url  # the broker's, for the queue's length (scale-out has its own)
        self.conn = psycopg.connect(f"{server}/{name}", autocommit=True, application_name="bench-driver")

    def one(self, sql: str, *params):
        """The first row of a query."""
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def all(self, sql: str, *params) -> list:
        """Every row of a query."""
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def run(self, sql: str, *params) -> None:
        """Run a statement that returns nothing."""
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def seed(self) -> dict[str, int]:
        """1,000 products with plenty of stock, and one hot product; ids for pgbench."""
        self.run(
            """
            INSERT INTO inventory_product (sku, name, price, currency, active, created_at, low_stock_threshold)
            SELECT format('BENCH-%%s', lpad(n::text, 4, '0')), format('Bench product %%s', n),
                   (5 + n %% 50)::numeric + 0.99, 'USD', true, now(), 5
            FROM generate_series(1, %s) AS n
            """,
            PRODUCTS,
        )
        self.run(
            "INSERT INTO inventory_product (sku, name, price, currency, active, created_at, low_stock_threshold) "
            "VALUES (%s, 'The hot product', 19.99, 'USD', true, now(), 5)",
            HOT_SKU,
        )
        self.run("INSERT INTO inventory_stock (product_id, on_hand, reserved) SELECT id, 0, 0 FROM inventory_product")
        low, high = self.one("SELECT min(id), max(id) FROM inventory_product WHERE sku <> %s", HOT_SKU)
        (hot,) = self.one("SELECT id FROM inventory_product WHERE sku = %s", HOT_SKU)
        return {"pmin": low, "pmax": high, "hot": hot}

    def reset(self, hot_stock: int = PLENTY) -> None:
        """No orders, fresh stock through the ledger, empty task tables."""
        self.run(
            "TRUNCATE orders_order, orders_orderline, orders_orderevent, orders_notification, payments_payment, "
            "payments_simulatedpaymentintent, receipts_receipt, inventory_stockmovement, django_q_ormq, "
            "django_q_task RESTART IDENTITY CASCADE"
        )
        self.run(
            "UPDATE inventory_stock s SET reserved = 0, on_hand = CASE WHEN p.sku = %s THEN %s ELSE %s END "
            "FROM inventory_product p WHERE p.id = s.product_id",
            HOT_SKU,
            hot_stock,
            PLENTY,
        )
        self.run(
            "INSERT INTO inventory_stockmovement (product_id, quantity, reason, note, created_at) "
            "SELECT product_id, on_hand, 'import', 'bench', now() FROM inventory_stock WHERE on_hand > 0"
        )
        self.run("VACUUM ANALYZE")

    def remove_orders_after(self, last_id: int) -> None:
        """Take back the orders after `last_id`, accepted with no cluster running (VALIDATED,
        their stock reserved), leaving every order before them in place."""
        self.run(
            """
            WITH held AS (
                SELECT l.product_id, sum(l.quantity) AS units FROM orders_orderline l
                WHERE l.order_id > %s GROUP BY l.product_id
            )
            UPDATE inventory_stock s SET reserved = s.reserved - held.units
            FROM held WHERE s.product_id = held.product_id
            """,
            last_id,
        )
        for table in ("orders_orderevent", "orders_orderline", "orders_scheduledretry", "orders_notification"):
            self.run(f"DELETE FROM {table} WHERE order_id > %s", last_id)
        self.run("DELETE FROM orders_order WHERE id > %s", last_id)

    def list_backend_pids(self) -> list[int]:
        """Server processes of the stack's connections to this database (not this driver's)."""
        rows = self.all(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND coalesce(application_name, '') <> 'bench-driver'"
        )
        return [pid for (pid,) in rows]

    def wait_for_trailing_accepts(self, timeout: float = 30) -> int:
        """Wait until no more orders arrive: when wrk stops, requests it already sent may
        still sit in the server's listen backlog and be served after it has gone."""
        last, steady, started = -1, 0, time.monotonic()
        while steady < 3 and time.monotonic() - started < timeout:
            (count,) = self.one("SELECT count(*) FROM orders_order")
            steady = steady + 1 if count == last else 0
            last = count
            time.sleep(0.2)
        return last

    def count_queued(self, broker: str) -> int:
        """Tasks waiting on the broker for this run's cluster."""
        if broker == "redis":
            import redis

            return redis.from_url(self.redis_url).llen(f"django_q:{CLUSTER_NAME}:q")
        return self.one("SELECT count(*) FROM django_q_ormq WHERE key = %s", CLUSTER_NAME)[0]

    def purge_queue(self, broker: str) -> None:
        """Drop the tasks waiting for this run's cluster."""
        if broker == "redis":
            import redis

            redis.from_url(self.redis_url).delete(f"django_q:{CLUSTER_NAME}:q")
        else:
            self.run("DELETE FROM django_q_ormq WHERE key = %s", CLUSTER_NAME)

    def count_unsettled(self) -> int:
        """Orders not yet final, plus failure emails still to go: work the pipeline has left."""
        (open_orders,) = self.one("SELECT count(*) FROM orders_order WHERE state <> ALL(%s)", FINAL_STATES)
        (unnotified,) = self.one(
            """
            SELECT count(*) FROM orders_order o WHERE o.state = ANY(%s)
            AND NOT EXISTS (SELECT 1 FROM orders_notification n
                            WHERE n.order_id = o.id AND n.kind = 'failure' AND n.status = 'sent')
            """,
            FAILURE_EMAIL_STATES,
        )
        return open_orders + unnotified

    def wait_until_settled(self, broker: str, timeout: float) -> float:
        """Wait until every order is final and the queue is empty; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.count_unsettled() == 0 and self.count_queued(broker) == 0:
                return time.monotonic() - started
            time.sleep(0.1)
        states = self.all("SELECT state, count(*) FROM orders_order GROUP BY state")
        raise BenchError(f"orders did not settle within {timeout:.0f} s: {states}, queue {self.count_queued(broker)}")

    def read_failed_tasks(self) -> dict:
        """Tasks that raised (django-q2 keeps only those): how many, and a few of their errors."""
        rows = self.all("SELECT name, left(result, 300) FROM django_q_task WHERE NOT success ORDER BY started LIMIT 3")
        (count,) = self.one("SELECT count(*) FROM django_q_task WHERE NOT success")
        return {"count": count, "sample": [f"{name}: {error}" for name, error in rows]}

    def read_e2e_stats(self) -> dict:
        """Accept -> COMPLETED from the database's own timestamps."""
        row = self.one(
            """
            SELECT count(*),
                   extract(epoch FROM max(completed_at) - min(created_at)),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
                   max(extract(epoch FROM completed_at - created_at))
            FROM orders_order WHERE state = 'COMPLETED'
            """
        )
        (total,) = self.one("SELECT count(*) FROM orders_order")
        completed, span, p50, p99, worst = row
        return {
            "orders": total,
            "completed": completed,
            "not_completed": total - completed,
            "span_s": round(float(span or 0), 3),
            "completed_per_s": round(completed / float(span), 2) if span else 0.0,
            "p50_ms": round(float(p50 or 0) * 1000, 1),
            "p99_ms": round(float(p99 or 0) * 1000, 1),
            "max_ms": round(float(worst or 0) * 1000, 1),
        }


def wait_for_row(db: Db, sql: str, timeout: float, *params):
    """Poll `sql` until its first row has a value in its first column; that row."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        row = db.one(sql, *params)
        if row and row[0] is not None:
            return row
        time.sleep(0.005)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for: {sql.strip()[:80]} {params}")
