"""`manage.py migrate` is safe to start twice at once on PostgreSQL: a one-off migrate job
retried, or two releases rolling out, both succeed and leave the schema migrated once."""

import subprocess
import tempfile
from pathlib import Path

import psycopg

from framework.management.commands.migrate import MIGRATION_LOCK_KEY
from tests.support.processes import PROJECT_DIR, PYTHON, Shop
from tests.support.servers import free_port, private_postgres  # noqa: F401  (the fixture)
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


def wait_for_database(tmp_path, database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = Shop(Path(tempfile.mkdtemp(dir=tmp_path)), cluster_name="migrate").env(DATABASE_URL=database_url)
    return subprocess.run(
        [PYTHON, "manage.py", "wait_for_database", *args],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_web_and_cluster_wait_for_the_migrations_and_give_up_naming_what_they_waited_for(private_postgres, tmp_path):  # noqa: F811
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    url = private_postgres.create_database("shop")

    before = wait_for_database(tmp_path / "before", url, "--migrated", "--timeout", "1")
    assert before.returncode == 1
    assert "gave up after 1 s waiting for" in before.stderr and "pending migration(s)" in before.stderr
    assert wait_for_database(tmp_path / "before", url, "--timeout", "1").returncode == 0  # it answers

    migrate = start_migrate(tmp_path, url, "after")
    migrate.communicate(timeout=300)
    assert wait_for_database(tmp_path / "after", url, "--migrated", "--timeout", "1").returncode == 0


def test_migrate_waits_for_a_database_that_is_not_up_yet_and_gives_up_naming_it(tmp_path):
    (tmp_path / "down").mkdir()
    unreachable = f"postgres://postgres@127.0.0.1:{free_port()}/shop"

    result = wait_for_database(tmp_path / "down", unreachable, "--timeout", "1")

    assert result.returncode == 1
    assert "gave up after 1 s waiting for the database" in result.stderr
