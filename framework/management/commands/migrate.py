"""manage.py migrate: Django's command, run by one process at a time on PostgreSQL.

Deployments start migrations as a one-off job (the image's `migrate`, compose's `migrate`
service), and two of them may start at once: two releases rolling out, a job retried while
the first still runs. Two `migrate`s on one PostgreSQL database race to create the same
tables and one fails. This command holds a PostgreSQL advisory lock around Django's own, so
the second waits for the first and then finds nothing left to do. SQLite has no such race
worth a lock (one file, one writer at a time).
"""

from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import connections

# An arbitrary 64-bit key, the same in every process of every release of the shop.
MIGRATION_LOCK_KEY = 0x0D_E9_10_7A_11_60


class Command(DjangoMigrateCommand):
    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(*args, **options)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
            if not cursor.fetchone()[0]:
                self.stdout.write("Another migrate is running: waiting for it to finish.")
                cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
        try:
            return super().handle(*args, **options)
        finally:
            # The lock belongs to the session: closing the connection would release it too.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
