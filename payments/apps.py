from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django.test.signals import setting_changed

        from payments import checks  # noqa: F401  (registers the deploy checks)
        from payments.gateways import forget_gateway
        from payments.refund_reasons import seed_refund_reasons

        setting_changed.connect(forget_gateway, dispatch_uid="payments.forget_gateway")
        # The migration seeds the reasons; after a flush (the tests) they are put back, and a
        # reason a manager edited keeps its edits.
        post_migrate.connect(seed_refund_reasons, sender=self, dispatch_uid="payments.seed_refund_reasons")
