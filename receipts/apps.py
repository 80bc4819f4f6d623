from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    name = "receipts"
    verbose_name = "Receipts"

    def ready(self):
        from django_q.signals import post_spawn

        from receipts.rendering import warm_up

        post_spawn.connect(warm_up, dispatch_uid="receipts.warm_up")
