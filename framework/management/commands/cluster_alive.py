"""manage.py cluster_alive: the task cluster's liveness probe (the container's healthcheck).

Exits 0 while the cluster's heartbeat (framework/cluster.py) is fresher than
CLUSTER_HEARTBEAT_MAX_AGE_SECONDS, 1 with the reason otherwise: a cluster that is stuck
fails it as surely as one that is gone. Run it where the cluster runs (the file is local).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from framework.cluster import heartbeat_age


class Command(BaseCommand):
    help = "Exit 0 when this machine's task cluster has beaten recently, 1 otherwise."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=float, default=None, help="seconds (CLUSTER_HEARTBEAT_MAX_AGE_SECONDS)")

    def handle(self, *args, max_age: float | None, **options):
        limit = settings.CLUSTER_HEARTBEAT_MAX_AGE_SECONDS if max_age is None else max_age
        path = settings.CLUSTER_HEARTBEAT_FILE
        age = heartbeat_age(path)
        if age is None:
            raise CommandError(f"no cluster heartbeat at {path}: the cluster has not started, or beats elsewhere")
        if age > limit:
            raise CommandError(f"the cluster's heartbeat is {age:.0f} s old (limit {limit:.0f} s): stuck or stopped")
        self.stdout.write(f"cluster alive: heartbeat {age:.1f} s old")
