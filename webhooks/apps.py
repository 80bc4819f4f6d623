from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from framework import facts
        from webhooks.outbox import OUTBOX

        # The domain apps announce facts (framework/facts.py); the outbox writes those an endpoint wants.
        facts.listen(OUTBOX)
