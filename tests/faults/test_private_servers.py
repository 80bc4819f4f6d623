"""The fault tests' own servers: restarted with their data, never the machine's shared ones."""

import psycopg
import redis


def test_a_private_postgres_keeps_its_rows_across_a_crash_and_restart(private_postgres):
    url = private_postgres.create_database("shop")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE sales (n int)")
        conn.execute("INSERT INTO sales VALUES (1), (2)")

    private_postgres.restart(mode="immediate")

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT sum(n) FROM sales").fetchone() == (3,)
    assert private_postgres.port != 5432


def test_a_private_redis_loses_what_it_held_when_restarted(private_redis):
    client = redis.Redis.from_url(private_redis.url())
    client.rpush("queue", "message")

    private_redis.restart()

    assert redis.Redis.from_url(private_redis.url()).llen("queue") == 0
    assert private_redis.port != 6379
