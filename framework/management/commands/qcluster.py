"""manage.py qcluster: django-q2's command, with a sentinel that survives a killed worker
(framework/cluster.py). The framework app comes before django_q in INSTALLED_APPS, so this
command is the one `manage.py qcluster` runs."""

import django_q.cluster
from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

from framework.cluster import RecoveringSentinel


class Command(DjangoQClusterCommand):
    def handle(self, *args, **options):
        # Cluster.start() starts the sentinel by this module-level name; django-q2 has no setting for it.
        django_q.cluster.Sentinel = RecoveringSentinel
        super().handle(*args, **options)
