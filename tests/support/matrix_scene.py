"""The rows the permission matrix's URLs point at, built once for the whole matrix, and what
tells a request that did something from one that did not (`tables_written`)."""

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from auditlog.models import LogEntry
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff.two_factor import needs_second_factor
from tests.support.admin_client import authenticator_app, pass_second_factor
from tests.support.ordering import place, placed
from tests.support.permission_matrix import STAFF


@dataclass
class Scene:
    """The rows the matrix's URLs point at, and an account per column."""

    keys: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)  # who -> the session key of their account


def _place(api, payment_method: str, email: str) -> int:
    return placed(place(api, pay_with=payment_method, email=email)).pk


def build_scene() -> Scene:
    """Orders in the states the actions need, placed the way a shopper does with the pipeline
    run by hand (a FAILED one to redrive, a COMPLETED one with its receipt to refund and
    resend, a CONFIRMED one stuck without its receipt to retry, regenerate and cancel), a
    product with its ledger, a row of each other model the admin lists, an account per role.

    Runs inside a transaction of the caller's; the on-commit callbacks (the pipeline's tasks)
    run or are dropped here by hand, since that transaction never commits.
    """
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group, User
    from django.contrib.contenttypes.models import ContentType
    from django.test import TestCase
    from django.utils import timezone
    from django_q.models import OrmQ, Schedule, Task
    from django_q.signing import SignedPackage
    from rest_framework.test import APIClient

    from backoffice import actions as manager_actions
    from inventory.models import Product, Stock, StockMovement
    from inventory.services import adjust_stock
    from monitoring.models import AlarmFiring
    from orders.models import Order, PipelineHold
    from orders.pipeline import run_step
    from partners.services import issue_partner_key
    from payments.models import Payment, Refund, StripeEvent
    from receipts.models import CreditNote
    from tests.support.admin_client import make_account
    from webhooks.models import WebhookDelivery, WebhookEndpoint
    from webhooks.outbox import write_event

    run_tasks = TestCase.captureOnCommitCallbacks
    api = APIClient()
    product = Product.objects.create(sku="MUG-001", name="Ceramic mug", price="12.50")
    Stock.objects.create(product=product)
    adjust_stock(product=product, delta=10, reason=StockMovement.Reason.IMPORT, note="scene")
    with run_tasks(execute=True):
        completed = _place(api, "pm_card_visa", "done@example.com")
    with run_tasks(execute=True):
        failed = _place(api, "pm_sim_unavailable", "failed@example.com")
    with run_tasks(execute=False):  # its tasks are dropped: the order waits where the steps leave it
        stuck = _place(api, "pm_card_visa", "stuck@example.com")
    for step in ("process_payment", "update_inventory"):
        with run_tasks(execute=False):
            run_step(stuck, step)
    with run_tasks(execute=True):
        manager_actions.refund_order(
            Order.objects.get(pk=completed),
            manager="scene",
            reason="a chipped mug",
            refund_reason="damaged",
            amount=Decimal("1.00"),
        )
    # An endpoint (added after the orders: it hears nothing of them) with one event it gave up on.
    endpoint = WebhookEndpoint.objects.create(url="https://192.0.32.10/scene", event_types=["order.paid"])
    webhook_event = write_event("order.paid", key="ord_scene", data={}, endpoint_ids=[endpoint.pk])
    webhook_event.deliveries.update(state=WebhookDelivery.State.FAILED)
    states = dict(Order.objects.filter(pk__in=[completed, failed, stuck]).values_list("pk", "state"))
    assert [states[completed], states[failed], states[stuck]] == ["COMPLETED", "FAILED", "CONFIRMED"], states

    now = timezone.now()
    # A task whose run shows: it emails (successes are not stored here, Q_SAVE_LIMIT=-1).
    mail = ("Matrix", "A task run again.", "shop@example.com", ["ops@example.com"])
    task = {"func": "django.core.mail.send_mail", "args": mail, "kwargs": {}, "started": now, "stopped": now}
    success = Task.objects.create(id=uuid.uuid4().hex, name="matrix-ok", success=True, result=1, **task)
    failure = Task.objects.create(id=uuid.uuid4().hex, name="matrix-failed", success=False, result="boom", **task)
    queued = OrmQ.objects.create(
        key="default", payload=SignedPackage.dumps({"id": uuid.uuid4().hex, "name": "matrix-queued", **task})
    )
    visitor = {"user_agent": "matrix", "ip_address": "127.0.0.1", "username": "someone", "http_accept": "*/*"}
    scratch = User.objects.create_user("scratch", password="not used").pk
    keys = {
        "product": product.pk,
        "sku": product.sku,
        "movement": StockMovement.objects.filter(product=product).order_by("id").first().pk,
        "completed": completed,
        "failed": failed,
        "stuck": stuck,
        "order_type": ContentType.objects.get_for_model(Order).pk,
        "payment": Payment.objects.get(order_id=completed).pk,
        "refund": Refund.objects.get(order_id=completed).pk,
        "refund_reason": "damaged",
        "credit_note": CreditNote.objects.get(order_id=completed).number,
        "stripe_event": StripeEvent.objects.create(event_id="evt_matrix", type="charge.refunded", payload={}).pk,
        "hold": PipelineHold.objects.create(side="receipts", reason="bucket down", placed_by="scene", placed_at=now).pk,
        "alarm": AlarmFiring.objects.create(rule="failed_orders", started_at=now, last_seen_at=now, summary="x").pk,
        "schedule": Schedule.objects.create(name="matrix", func="math.floor", schedule_type=Schedule.DAILY).pk,
        "success": success.pk,
        "failure": failure.pk,
        "ormq": queued.pk,
        "attempt": AccessAttempt.objects.create(
            **visitor, path_info="/admin/login/", get_data="", post_data="", failures_since_start=1
        ).pk,
        "access_log": AccessLog.objects.create(**visitor, path_info="/admin/login/").pk,
        "failure_log": AccessFailureLog.objects.create(**visitor, path_info="/admin/login/").pk,
        "partner_key": issue_partner_key(name="Matrix warehouse", scopes=["stock:read"]).key.pk,
        "webhook_endpoint": endpoint.pk,
        "webhook_delivery": webhook_event.deliveries.get().pk,
        "group": Group.objects.create(name="Scratch").pk,
        "user": scratch,
        "log_entry": LogEntry.objects.order_by("id").first().pk,  # the catalog's products made some
        "totp_device": TOTPDevice.objects.create(user_id=scratch, name="app", confirmed=True).pk,
        "static_device": StaticDevice.objects.create(user_id=scratch, name="codes", confirmed=True).pk,
    }
    return Scene(keys, {who: _session_of(make_account(who)) for who in STAFF})


def _session_of(user) -> str:
    """A logged-in session for the account, made once: each case sends its cookie."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    if needs_second_factor(user):
        pass_second_factor(client, authenticator_app(user))
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# Tables a request may write without doing anything: the session, the admin's log of its own changes.
BOOKKEEPING_TABLES = ("django_session", "django_admin_log")


def tables_written(statements: list[str]) -> list[str]:
    """The tables these SQL statements write, but for the bookkeeping ones."""
    written = []
    for sql in statements:
        words = sql.replace('"', " ").split()
        verb = words[0].upper() if words else ""
        if verb in ("INSERT", "UPDATE", "DELETE"):
            table = words[2] if verb in ("INSERT", "DELETE") else words[1]
            if table not in BOOKKEEPING_TABLES:
                written.append(f"{verb} {table}")
    return written
