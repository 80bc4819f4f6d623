from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The managers' back office: the order admin, its confirmation pages and actions, the timeline."""

    name = "backoffice"
    verbose_name = "Back office"

    def ready(self) -> None:
        # After the admin's autodiscovery (django.contrib.admin comes first in INSTALLED_APPS),
        # so this page replaces the one django-auditlog registers.
        from backoffice.activity import register_activity_log

        register_activity_log()
