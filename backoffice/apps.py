from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The managers' back office: the order admin, its confirmation pages and actions, the timeline."""

    name = "backoffice"
    verbose_name = "Back office"
