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

from framework import metrics
from framework.formatting import format_percent
from orders.models import Notification, Order, OrderState
from payments.models import Refund

TEMPLATES = {
    Notification.Kind.CONFIRMATION: ("emails/order_confirmation", "Your order {reference} is confirmed"),
    # The same confirmation, saying it is a copy: a manager sent it again.
    Notification.Kind.CONFIRMATION_RESEND: (
        "emails/order_confirmation",
        "Your order {reference} is confirmed (copy sent again)",
    ),
    Notification.Kind.FAILURE: ("emails/order_failure", "We could not process your order {reference}"),
    Notification.Kind.CANCELLATION: ("emails/order_cancelled", "Your order {reference} has been cancelled"),
    Notification.Kind.REFUND: ("emails/order_refund", "A refund for your order {reference}"),
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


def _claim(order: Order, kind: str, key: str) -> Notification | None:
    """Take the right to send this email, or None when it was sent already."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.NOTIFICATION_CLAIM_SECONDS)
    with transaction.atomic():
        notification, created = Notification.objects.select_for_update().get_or_create(
            order=order, kind=kind, key=key, defaults={"claimed_at": now}
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
    OrderState.CANCELLED: "You will not be charged: any amount held or taken for this order is released or refunded.",
}


def build_order_email(order: Order, kind: str, *, key: str = "", extra: dict | None = None) -> EmailMultiAlternatives:
    """The email of this kind for this order, in plain text and HTML; `extra` adds to its context."""
    template, subject = TEMPLATES[kind]
    context = {
        **(extra or {}),
        "resend": kind == Notification.Kind.CONFIRMATION_RESEND,
        "order": order,
        "lines": list(order.lines.all()),
        "shop_name": settings.SHOP_NAME,
        "tax_rate_percent": format_percent(order.tax_rate),
        "money_note": MONEY_AFTER_FAILURE.get(order.state, ""),
        # A stable address: it redirects to a freshly signed link, so the email never expires.
        "receipt_link": settings.PUBLIC_BASE_URL + reverse("order-receipt", args=[order.reference]),
        "status_link": settings.PUBLIC_BASE_URL + reverse("shop-order", args=[order.reference]),
    }
    message = EmailMultiAlternatives(
        subject=subject.format(reference=order.reference),
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
        headers={"Message-ID": f"<{order.reference}.{kind}{'.' + key if key else ''}@{_mail_domain()}>"},
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


def _mail_domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.split("@")[-1].rstrip(">")


def send_order_email(order: Order, kind: str, *, key: str = "", extra: dict | None = None) -> bool:
    """Send this order's email of this kind (and key) unless it went already; True when sent now.

    The pipeline's emails have no key, one of each per order; a manager's resend is keyed by
    its form, a refund's email by the refund, so each of those goes once too. Raises
    `NotificationInProgress` while another worker sends it, `NotificationCapped` for a failure
    email over the address's hourly cap.
    """
    notification = _claim(order, kind, key)
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
        build_order_email(order, kind, key=key, extra=extra).send()
    except Exception as error:
        metrics.EMAILS.labels(kind, "failed").inc()
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000]
        )
        raise
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.SENT, sent_at=timezone.now(), error=""
    )
    metrics.EMAILS.labels(kind, "sent").inc()
    return True


def send_refund_email(refund_id: int) -> bool:
    """Tell the shopper a manager's refund went back to their card (once per refund)."""
    refund = Refund.objects.select_related("order", "payment").get(pk=refund_id)
    extra = {"refund": refund, "refunded_total": refund.payment.amount_refunded}
    return send_order_email(refund.order, Notification.Kind.REFUND, key=f"refund-{refund.pk}", extra=extra)
