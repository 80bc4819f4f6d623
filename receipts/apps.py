import sys

from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    name = "receipts"
    verbose_name = "Receipts"

    def ready(self):
        from django_q.signals import post_spawn

        from receipts.rendering import warm_up

        post_spawn.connect(warm_up, dispatch_uid="receipts.warm_up")
        if sys.argv[1:2] == ["qcluster"]:
            # The cluster renders the receipts: its sentinel loads WeasyPrint (receipts/pdf.py,
            # which other processes load only with their first PDF) before it forks its
            # workers, so that a new worker starts with it rather than spending a second or
            # more importing it before its first task.
            import receipts.pdf  # noqa: F401
