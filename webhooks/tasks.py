"""django-q2 entry points of the webhooks: each takes a row's id and calls a service."""

from webhooks.delivery import deliver_to_endpoint


def deliver_webhooks(endpoint_id: int) -> int:
    """Send an endpoint's pending events, in order (webhooks/delivery.py)."""
    return deliver_to_endpoint(endpoint_id)
