"""`manage.py check --deploy`: a production install that would take no real money says so."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_payments_are_real(app_configs=None, **kwargs) -> list[Warning]:
    """The simulated gateway moves no money, and its fault ids let anyone provoke failures."""
    problems = []
    if settings.PAYMENT_GATEWAY == "simulated":
        problems.append(
            Warning(
                "PAYMENT_GATEWAY is 'simulated': orders complete without any money being taken.",
                hint="Set PAYMENT_GATEWAY=stripe with STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.",
                id="payments.W001",
            )
        )
    if settings.PAYMENT_SIMULATED_FAULTS and not settings.DEBUG:
        problems.append(
            Warning(
                "PAYMENT_SIMULATED_FAULTS is on: any shopper can stall the workers with pm_sim_hang.",
                hint="Leave PAYMENT_SIMULATED_FAULTS unset in production.",
                id="payments.W002",
            )
        )
    return problems
