"""manage.py wait_for_database: wait until the database answers (and, with --migrated, until
every migration is applied), for at most --timeout seconds.

The image's entrypoint runs it before `migrate` (the database may still be starting) and
before `web` and `cluster` (the one-off migrate job may still be running): orchestrators that
start services in order without waiting on health (podman-compose on podman 4, a Kubernetes
Deployment beside its migration Job) then still start the shop cleanly, instead of crashing
it into restarts.
"""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.migrations.executor import MigrationExecutor


def pending_migrations(alias: str = DEFAULT_DB_ALIAS) -> int:
    """How many migrations the database still lacks (it raises OperationalError while down)."""
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


class Command(BaseCommand):
    help = "Wait until the database answers (--migrated: and is fully migrated)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--migrated", action="store_true", help="also wait until no migration is pending")
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds (120)")

    def handle(self, *args, migrated: bool, timeout: float, **options):
        deadline = time.monotonic() + timeout
        said = ""
        while True:
            try:
                connections[DEFAULT_DB_ALIAS].ensure_connection()
                waiting_for = f"{pending_migrations()} pending migration(s)" if migrated else ""
                if not waiting_for or waiting_for.startswith("0 "):
                    return
            except OperationalError as error:
                connections[DEFAULT_DB_ALIAS].close()
                waiting_for = f"the database ({str(error).strip().splitlines()[0]})"
            if waiting_for != said:
                self.stderr.write(f"waiting for {waiting_for}")
                said = waiting_for
            if time.monotonic() > deadline:
                raise CommandError(f"gave up after {timeout:.0f} s waiting for {waiting_for}")
            time.sleep(1)
