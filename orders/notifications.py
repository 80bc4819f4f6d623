"""Emails to the shopper: at most one of each kind per order, whoever runs the step.

A send is claimed in the database before the email leaves, so a second worker running
the same step waits for the first instead of sending again. A claim left behind by a
worker that died mid-send expires and is taken over; the Message-ID is derived from the
order and kind, so a receiving server can still tell the resend is the same message.

Failure emails go to whatever address an order names, so one address gets at most
FAILURE_EMAILS_PER_ADDRESS_PER_HOUR of them: nobody can turn the shop into a mail bomb by
placing orders bound to fail. The ones over the cap are marked CAPPED and never sent.
"""

from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from framework.formatting import format_percent
from orders.models import Notification, Order, OrderState

TEMPLATES = {
    Notification.Kind.CONFIRMATION: ("emails/order_confirmation", "Your order {reference} is confirmed"),
    Notification.Kind.FAILURE: ("emails/order_failure", "We could not process your order {reference}"),
}


class NotificationInProgress(Exception):
    """Another worker holds a fresh claim on this email; try again shortly."""


class NotificationCapped(Exception):
    """The address had its hourly share of failure emails: this one is not sent, ever."""


def failure_emails_sent_to(email: str, *, within: timedelta = timedelta(hours=1)) -> int:
    """How many failure emails went to this address (any case) in the last `within`."""
    return Notification.objects.filter(
        kind=Notification.Kind.FAILURE,
        status=Notification.Status.SENT,
        sent_at__gte=timezone.now() - within,
        order__email__iexact=email,
    ).count()


def _claim(order: Order, kind: str) -> Notification | None:
    """Take the right to send this email, or None when it was sent already."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.NOTIFICATION_CLAIM_SECONDS)
    with transaction.atomic():
        notification, created = Notification.objects.select_for_update().get_or_create(
            order=order, kind=kind, defaults={"claimed_at": now}
        )
        if created:
            return notification
        if notification.status in (Notification.Status.SENT, Notification.Status.CAPPED):
            return None
        if notification.status == Notification.Status.SENDING and notification.claimed_at > stale_before:
            raise NotificationInProgress(f"{kind} email of {order.reference} is being sent by another worker")
        notification.status = Notification.Status.SENDING
        notification.claimed_at = now
        notification.save(update_fields=["status", "claimed_at"])
        return notification


# What happened to the shopper's money, by failure end: the money side runs after the
# state changes, so the words say what will be true, not what the provider said.
MONEY_AFTER_FAILURE = {
    OrderState.REJECTED: "No payment was taken for this order.",
    OrderState.PAYMENT_FAILED: "No payment was taken for this order.",
    OrderState.FAILED: "You will not be charged: any amount held or taken for this order is released or refunded.",
}


def build_order_email(order: Order, kind: str) -> EmailMultiAlternatives:
    """The email of this kind for this order, in plain text and HTML."""
    template, subject = TEMPLATES[kind]
    context = {
        "order": order,
        "lines": list(order.lines.all()),
        "shop_name": settings.SHOP_NAME,
        "tax_rate_percent": format_percent(order.tax_rate),
        "money_note": MONEY_AFTER_FAILURE.get(order.state, ""),
        # A stable address: it redirects to a freshly signed link, so the email never expires.
        "receipt_link": settings.PUBLIC_BASE_URL + reverse("order-receipt", args=[order.reference]),
        "status_link": settings.PUBLIC_BASE_URL + reverse("order-detail", args=[order.reference]),
    }
    message = EmailMultiAlternatives(
        subject=subject.format(reference=order.reference),
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
        headers={"Message-ID": f"<{order.reference}.{kind}@{settings.DEFAULT_FROM_EMAIL.split('@')[-1]}>"},
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


def send_order_email(order: Order, kind: str) -> bool:
    """Send this order's email of this kind unless it went already; True when sent now.

    Raises `NotificationInProgress` while another worker sends it, `NotificationCapped` for
    a failure email over the address's hourly cap.
    """
    notification = _claim(order, kind)
    if notification is None:
        return False
    if kind == Notification.Kind.FAILURE and (
        failure_emails_sent_to(order.email) >= settings.FAILURE_EMAILS_PER_ADDRESS_PER_HOUR
    ):
        Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.CAPPED)
        raise NotificationCapped(
            f"Not sent: {settings.FAILURE_EMAILS_PER_ADDRESS_PER_HOUR} failure emails went to this address "
            "in the last hour."
        )
    try:
        build_order_email(order, kind).send()
    except Exception as error:
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000]
        )
        raise
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.SENT, sent_at=timezone.now(), error=""
    )
    return True
