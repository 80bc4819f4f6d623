"""Reads of the webhooks' state, for the alarm and the monitoring page."""

from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from django.db.models import Count, Q, QuerySet

from webhooks.models import WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class Waiting(TypedDict):
    waiting: int


def endpoints_failing_since(since: datetime) -> "QuerySet[WithAnnotations[WebhookEndpoint, Waiting]]":
    """Endpoints failing (active, in backoff) since `since` or earlier, or switched off for
    failing, with the number of events waiting for each (`waiting`)."""
    failing = Q(active=True, failing_since__lte=since) | Q(active=False, failing_since__isnull=False)
    waiting = Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.State.PENDING))
    return WebhookEndpoint.objects.filter(failing).annotate(waiting=waiting).order_by("pk")
