"""Emails to the shopper: at most one of each kind per order, whoever runs the step.

A send is claimed in the database before the email leaves, so a second worker running
the same step waits for the first instead of sending again.

A send whose outcome is unknown is never repeated on its own. Connecting (and logging in) is
apart from handing the message over: a failure to connect, or a server that answers with a
refusal, took nothing, so the email is FAILED and retried. A timeout or a lost connection
once the message is on its way may have been delivered (a server that stores the message
and answers DATA late), and so may a claim whose worker died mid-send (it goes stale after
NOTIFICATION_CLAIM_SECONDS): those are UNCERTAIN, `NotificationUncertain` is raised, and the
caller flags the order for a manager (`flag_uncertain_email`), who may resend it. At most
one of each email, as DESIGN.md promises, rather than at least one.

Failure emails go to whatever address an order names, so one address gets at most
FAILURE_EMAILS_PER_ADDRESS_PER_HOUR of them: nobody can turn the shop into a mail bomb by
placing orders bound to fail. The ones over the cap are marked CAPPED and never sent.
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from framework import metrics
from framework.compiled_writes import writes_for
from framework.formatting import format_percent
from framework.inserts import insert_if_absent
from orders import history
from orders.models import Notification, Order, OrderState
from payments.models import Refund
from receipts.models import CreditNote

logger = logging.getLogger(__name__)

# The server answered, with a refusal: it did not take the message, so sending again is safe.
SERVER_REFUSED = (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused)
# The label a refund email's events carry in the order's history (persisted: the job is
# `send_refund_email` everywhere else).
REFUND_EMAIL_LABEL = "notify_refund"

TEMPLATES: dict[str, tuple[str, str]] = {
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


class NotificationUncertain(Exception):
    """The mail server may or may not have taken this email: it is never sent again on its own."""

    def __init__(self, notification: Notification, why: str):
        super().__init__(f"{notification.kind} email of order {notification.order_id}: {why}")
        self.notification = notification
        self.why = why


def flag_uncertain_email(order: Order, uncertain: NotificationUncertain, *, actor: history.Actor, step: str) -> bool:
    """Ask a manager to look at an order whose email may not have arrived (once per email)."""
    notification = uncertain.notification
    return history.email_uncertain(
        order,
        actor=actor,
        step=step,
        email=Notification.Kind(notification.kind).label.lower(),
        notification=notification.pk,
        why=uncertain.why,
    )


def failure_emails_sent_to(email: str, *, within: timedelta = timedelta(hours=1)) -> int:
    """How many failure emails went to this address (any case) in the last `within`."""
    return Notification.objects.filter(
        kind=Notification.Kind.FAILURE,
        status=Notification.Status.SENT,
        sent_at__gte=timezone.now() - within,
        order__email__iexact=email,
    ).count()


def _claim(order: Order, kind: str, key: str) -> Notification | None:
    """Take the right to send this email, or None when it was sent already.

    Raises `NotificationUncertain` for an email that may have gone already: found so, or
    found claimed by a worker that stopped mid-send (its claim stale).
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.NOTIFICATION_CLAIM_SECONDS)
    # Nearly always the first and only claim: one statement, the unique (order, kind, key)
    # deciding between racing workers. A row already there is judged under its lock.
    claim = Notification(order=order, kind=kind, key=key, status=Notification.Status.SENDING, claimed_at=now)
    if insert_if_absent(claim):
        return claim
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(order=order, kind=kind, key=key)
        if notification.status in (Notification.Status.SENT, Notification.Status.CAPPED):
            return None
        if notification.status == Notification.Status.UNCERTAIN:
            raise NotificationUncertain(notification, notification.error or "its send was not confirmed")
        if notification.status == Notification.Status.SENDING:
            if notification.claimed_at > stale_before:
                raise NotificationInProgress(f"{kind} email of {order.reference} is being sent by another worker")
            # Its worker stopped mid-send: the message may have gone. (Recorded, then raised
            # once this transaction has committed it.)
            why = f"the worker sending it stopped mid-send over {settings.NOTIFICATION_CLAIM_SECONDS} s ago"
            _mark_uncertain(notification, why)
        else:
            notification.status = Notification.Status.SENDING
            notification.claimed_at = now
            notification.save(update_fields=["status", "claimed_at"])
            return notification
    raise NotificationUncertain(notification, why)


# What happened to the shopper's money, by failure end: the money side runs after the
# state changes, so the words say what will be true, not what the provider said.
MONEY_AFTER_FAILURE: dict[str, str] = {
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
    email over the address's hourly cap, `NotificationUncertain` when it may have gone (now
    or before) and so is not sent again.
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
        message = build_order_email(order, kind, key=key, extra=extra)
        connection = message.get_connection()
        connection.open()  # fails before anything is handed over: safe to send again
    except Exception as error:
        _mark_failed(notification, error)
        raise
    try:
        connection.send_messages([message])
    except SERVER_REFUSED as error:
        _mark_failed(notification, error)
        raise
    except Exception as error:
        why = f"the mail server did not confirm it took the message: {type(error).__name__}: {error}"
        _mark_uncertain(notification, why)
        raise NotificationUncertain(notification, why) from error
    finally:
        _close(connection)
    # Through the model's compiled update: every order's confirmation passes here.
    writes_for(Notification).update(
        notification.pk, {"status": Notification.Status.SENT, "sent_at": timezone.now(), "error": ""}
    )
    metrics.EMAILS.labels(kind, "sent").inc()
    return True


def _mark_failed(notification: Notification, error: Exception) -> None:
    metrics.EMAILS.labels(notification.kind, "failed").inc()
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000]
    )


def _mark_uncertain(notification: Notification, why: str) -> None:
    metrics.EMAILS.labels(notification.kind, "uncertain").inc()
    notification.status, notification.error = Notification.Status.UNCERTAIN, why[:2000]
    Notification.objects.filter(pk=notification.pk).update(status=notification.status, error=notification.error)


def _close(connection) -> None:
    try:
        connection.close()
    except Exception as error:  # the server answered (or not) already: a lost QUIT changes nothing
        logger.info("closing the mail connection failed: %s", error)


def send_refund_email(refund_id: int) -> bool:
    """Tell the shopper a refund went back to their card, with its credit note's link (once per refund).

    The reason is printed when its entry in the list says the shopper may see it.
    """
    refund = Refund.objects.select_related("order", "payment", "reason_code").get(pk=refund_id)
    note = CreditNote.objects.filter(refund=refund, stored_at__isnull=False).first()
    extra = {
        "refund": refund,
        "refunded_total": refund.payment.amount_refunded,
        "reason_shown": refund.reason_code.label if refund.reason_code.show_to_shopper else "",
        "credit_note": note,
        # A stable address, as the receipt's: it redirects to a freshly signed link.
        "credit_note_link": settings.PUBLIC_BASE_URL
        + reverse("order-credit-note", args=[refund.order.reference, note.number])
        if note
        else "",
    }
    try:
        return send_order_email(refund.order, Notification.Kind.REFUND, key=f"refund-{refund.pk}", extra=extra)
    except NotificationUncertain as uncertain:
        flag_uncertain_email(refund.order, uncertain, actor=history.PIPELINE, step=REFUND_EMAIL_LABEL)
        return False
