"""`manage.py migrate` is safe to start twice at once on PostgreSQL: a one-off migrate job
retried, or two releases rolling out, both succeed and leave the schema migrated once."""

import subprocess

import psycopg

from framework.management.commands.migrate import MIGRATION_LOCK_KEY
from tests.support.processes import PROJECT_DIR, PYTHON, Shop
from tests.support.servers import private_postgres  # noqa: F401  (the fixture)
from tests.support.waiting import wait_until


def start_migrate(tmp_path, database_url: str, name: str) -> subprocess.Popen:
    """`manage.py migrate` in the background: its output on .stdout, its log lines in NAME/stderr."""
    env = Shop(tmp_path / name, cluster_name="migrate").env(DATABASE_URL=database_url)
    with open(tmp_path / name / "stderr", "w") as stderr:
        return subprocess.Popen(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def applied_migrations(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as connection:
        return connection.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall()


def test_two_migrates_started_at_once_on_a_fresh_database_both_succeed(private_postgres, tmp_path):  # noqa: F811
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    url = private_postgres.create_database("shop")

    runs = [start_migrate(tmp_path, url, "first"), start_migrate(tmp_path, url, "second")]
    outputs = [run.communicate(timeout=300)[0] for run in runs]

    logs = [(tmp_path / name / "stderr").read_text() for name in ("first", "second")]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(outputs + logs)
    applied = applied_migrations(url)
    assert len(applied) == len(set(applied)) > 0  # each migration applied once
    assert ("orders", "0001_initial") in applied


def test_a_migrate_waits_for_the_one_holding_the_lock_then_finds_nothing_to_do(private_postgres, tmp_path):  # noqa: F811
    (tmp_path / "waiting").mkdir()
    url = private_postgres.create_database("shop")
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
        waiting = start_migrate(tmp_path, url, "waiting")
        # It says it waits, and does: no table is made while another migrate holds the lock.
        line = wait_until(lambda: waiting.stdout.readline(), timeout=60)
        assert line.strip() == "Another migrate is running: waiting for it to finish."
        assert waiting.poll() is None
        assert holder.execute("SELECT to_regclass('django_migrations')").fetchone()[0] is None
        holder.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])

    output = waiting.communicate(timeout=300)[0]
    assert waiting.returncode == 0, output + (tmp_path / "waiting" / "stderr").read_text()
    assert ("orders", "0001_initial") in applied_migrations(url)
