"""POST /api/payments/stripe/webhook: Stripe's events, verified, stored once, processed later.

The answer is quick and says only whether the event was accepted: the work happens in
the task queue, so Stripe never times out waiting for us and never resends an event
because our processing was slow.
"""

import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from framework import metrics
from payments.gateways.stripe_gateway import InvalidWebhook, verify_webhook
from payments.stripe_events import receive_stripe_event

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Verify the signature over the raw body, store the event once, queue its processing."""
    try:
        event = verify_webhook(
            request.body,
            request.headers.get("Stripe-Signature", ""),
            secret=settings.STRIPE_WEBHOOK_SECRET,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        )
    except InvalidWebhook as error:
        logger.warning("refused a Stripe webhook: %s", error)
        metrics.WEBHOOK_EVENTS.labels("stripe", "refused").inc()
        return JsonResponse({"error": str(error)}, status=400)
    created = receive_stripe_event(event)
    return JsonResponse({"received": True, "duplicate": not created})
