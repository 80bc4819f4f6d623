from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from framework.cache_tables import create_cache_tables
        from framework.queue import carry_log_context
        from framework.schedules import apply_schedules

        carry_log_context()

        # post_migrate is sent once per installed app after every migrate (and flush);
        # listening for this one app applies the whole table once, after all migrations.
        post_migrate.connect(apply_schedules, sender=self, dispatch_uid="config.apply_schedules")
        post_migrate.connect(create_cache_tables, sender=self, dispatch_uid="config.create_cache_tables")
