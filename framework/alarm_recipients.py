"""Who is woken when something goes wrong: the alarms (monitoring/alarms.py) and the
webhooks that disable an endpoint failing for a day (webhooks/delivery.py) email the same people."""

from django.conf import settings
from django.contrib.auth import get_user_model

# Held by the roles that act on orders (staff/roles.py); every superuser has it too.
RECEIVE_ALARMS = "monitoring.receive_alarms"


def alarm_recipients() -> list[str]:
    """Who an alarm emails, each address once: every active superuser and every active member
    of a role that acts on orders (the `monitoring.receive_alarms` permission) with an
    address, looked up now so that people added today are told; then ALARM_EMAILS."""
    # Permissions come from groups and users alone here (ModelBackend); axes' backend only refuses logins.
    users = get_user_model().objects.with_perm(
        RECEIVE_ALARMS, is_active=True, include_superusers=True, backend="django.contrib.auth.backends.ModelBackend"
    )
    addresses = [*users.exclude(email="").order_by("email").values_list("email", flat=True), *settings.ALARM_EMAILS]
    return list(dict.fromkeys(address.strip() for address in addresses if address.strip()))
