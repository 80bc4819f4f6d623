"""The statement budgets of accepting an order and of its pipeline, the statements that
count against them (tests/fast/test_statement_budget.py, tests/fast/test_accept_cache_budget.py),
and how the connection commits them (synchronous_commit)."""

# Read the products, units held unpaid, insert the order (already VALIDATED) with its line and
# the move's history event, reserve: on PostgreSQL the order, its lines and its event are one
# statement.
ACCEPT_BUDGET = {"postgresql": 4, "sqlite": 6}
# payment, capture, receipt, email: four steps, each taking its lease as it counts its attempts
# and reads the state; and the managers' holds, read once through the cache (then kept there
# for a minute). The order and its lines, the payment row and whether the receipt is stored
# read once per chain; each usual move one UPDATE ... RETURNING with its history event; the
# receipt's and the email's claims and the simulated gateway's intent one INSERT ... ON
# CONFLICT each; the receipt step's lock is its order's state alone. On PostgreSQL each move's
# history event is written in the move's statement.
PIPELINE_BUDGET = {"postgresql": 28, "sqlite": 31}


def data_statements(queries: list[dict]) -> list[str]:
    """Reads and writes of the shop's tables: no transaction control, no task queue."""
    statements = (q["sql"] for q in queries)
    return [
        sql for sql in statements if sql.split()[0] in ("SELECT", "INSERT", "UPDATE", "WITH") and "django_q" not in sql
    ]


def synchronous_commit() -> str:
    """The default connection's `synchronous_commit` as it stands now (PostgreSQL)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]
