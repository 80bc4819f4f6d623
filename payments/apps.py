from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from django.test.signals import setting_changed

        from payments import checks  # noqa: F401  (registers the deploy checks)
        from payments.gateways import forget_gateway

        setting_changed.connect(forget_gateway, dispatch_uid="payments.forget_gateway")
