"""Alarms: rules evaluated against what really happened, emails that really go (aiosmtpd),
once per firing, none within the cooldown, an all-clear when it resolves."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import caches
from django.core.management import call_command
from django.utils import timezone

from inventory.models import Stock
from monitoring.alarms import alarm_recipients, evaluate_alarms
from monitoring.models import AlarmFiring
from orders.models import ActorKind, EventKind, Order, OrderEvent
from orders.tasks import audit_invariants as scheduled_audit
from payments.models import Payment, StripeEvent
from staff.services import create_staff
from tests.support.admin_client import authenticator_app, pass_second_factor
from tests.support.aws import received_messages

MANAGER_EMAIL = "manager@shop.example"
ON_CALL = "oncall@shop.example"


@pytest.fixture
def alarm_settings(settings):
    """One failure-rate rule that a test can trip with twenty orders, and no rule that fires
    merely because a test runs without a cluster or with little stock."""
    settings.ALARM_EMAILS = [ON_CALL]
    settings.ALARM_COOLDOWN_SECONDS = 1800
    settings.ALARM_FAILURE_RATE = 0.5
    settings.ALARM_FAILURE_RATE_MIN_ORDERS = 10
    settings.ALARM_FAILURE_RATE_WINDOW_SECONDS = 300
    settings.ALARM_MIN_CLUSTERS = 0
    return settings


@pytest.fixture
def managers(transactional_db):
    """An order manager and a stock clerk, in the groups staff are given (by name)."""
    manager = User.objects.create_user("mo", MANAGER_EMAIL, is_staff=True)
    manager.groups.add(Group.objects.get_or_create(name="Order manager")[0])
    clerk = User.objects.create_user("sam", "clerk@shop.example", is_staff=True)
    clerk.groups.add(Group.objects.get_or_create(name="Stock clerk")[0])
    return manager


def alarm_emails(smtp_server) -> list:
    """What reached the managers (the shoppers' own failure emails go to the same server)."""
    return [m for m in smtp_server.received if MANAGER_EMAIL in m.recipients]


def gateway_down_for(shopper, orders: int) -> None:
    """The simulated gateway fails every call for these orders: each ends FAILED after its retries."""
    for _ in range(orders):
        assert shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable").state == "FAILED"


def three_failures_trip_the_failure_rate(settings, shopper, make_product) -> None:
    """A rule that fires on three orders, and three orders FAILED: the smallest firing alarm."""
    settings.ALARM_FAILURE_RATE_MIN_ORDERS = 3
    make_product("MUG-001", on_hand=100)
    gateway_down_for(shopper, 3)


def time_passes(seconds: int) -> None:
    """Move every order and alarm timestamp back, as if `seconds` went by."""
    back = timedelta(seconds=seconds)
    for order in Order.objects.all():
        Order.objects.filter(pk=order.pk).update(updated_at=order.updated_at - back)
    for firing in AlarmFiring.objects.all():
        AlarmFiring.objects.filter(pk=firing.pk).update(
            started_at=firing.started_at - back,
            last_seen_at=firing.last_seen_at - back,
            notified_at=firing.notified_at and firing.notified_at - back,
            resolved_at=firing.resolved_at and firing.resolved_at - back,
        )


def test_a_gateway_down_for_twenty_orders_emails_the_managers_once_then_the_all_clear(
    alarm_settings, managers, smtp_server, shopper, make_product
):
    make_product("MUG-001", on_hand=100)
    gateway_down_for(shopper, 20)

    evaluate_alarms()

    [fired] = alarm_emails(smtp_server)
    assert sorted(fired.recipients) == [MANAGER_EMAIL, ON_CALL]  # not the stock clerk
    assert "ALARM Orders failing: 20 of 20 orders ended FAILED in the last 5 min (100%)" in fired.subject
    assert "/admin/monitoring/" in fired.part("text/plain")

    evaluate_alarms()  # still firing: nobody is told twice
    assert len(alarm_emails(smtp_server)) == 1

    time_passes(360)  # the gateway is back, and the failures have left the window
    for _ in range(2):
        assert shopper.buys({"MUG-001": 1}).state == "COMPLETED"
    evaluate_alarms()

    fired, resolved = alarm_emails(smtp_server)
    assert "RESOLVED Orders failing: Resolved: 20 of 20 orders ended FAILED" in resolved.subject
    firing = AlarmFiring.objects.get(rule="failure_rate")
    assert firing.resolved_at and firing.notified_at and firing.resolve_notified_at


def test_an_alarm_firing_again_within_the_cooldown_waits_for_its_end_to_email(
    alarm_settings, managers, smtp_server, shopper, make_product
):
    three_failures_trip_the_failure_rate(alarm_settings, shopper, make_product)
    evaluate_alarms()
    time_passes(360)
    evaluate_alarms()
    assert len(alarm_emails(smtp_server)) == 2  # fired, resolved

    gateway_down_for(shopper, 3)  # again, minutes after the first email
    evaluate_alarms()

    assert len(alarm_emails(smtp_server)) == 2
    assert AlarmFiring.objects.filter(rule="failure_rate", resolved_at__isnull=True, notified_at__isnull=True).exists()

    time_passes(1800)  # the cooldown is over and it still fires
    gateway_down_for(shopper, 3)
    evaluate_alarms()
    assert "ALARM Orders failing" in alarm_emails(smtp_server)[2].subject


def test_an_order_stuck_past_its_limit_fires_its_alarm_and_is_flagged_once(
    alarm_settings, managers, smtp_server, shopper, make_product, held_pipeline
):
    alarm_settings.ORDER_TIME_LIMIT_SECONDS = 600
    make_product("MUG-001", on_hand=10)
    order = shopper.buys({"MUG-001": 1})
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=11))

    evaluate_alarms()
    evaluate_alarms()  # flagging touched the order; it is still stuck

    firing = AlarmFiring.objects.get(rule="orders_over_time_limit", resolved_at__isnull=True)
    assert firing.details["orders"] == [order.reference]
    [email] = alarm_emails(smtp_server)
    assert "ALARM Orders stuck: Orders over their 10 min limit: 1 VALIDATED, oldest untouched 11 min" in email.subject
    order.refresh_from_db()
    assert order.needs_attention
    [flag] = OrderEvent.objects.filter(order=order, kind=EventKind.FLAGGED)
    assert flag.actor_kind == ActorKind.ALARM
    assert flag.parameters["finding"] == "over its time limit in VALIDATED"

    held_pipeline.run_by_hand(order, "process_payment", "update_inventory", "generate_receipt", "send_notification")
    evaluate_alarms()

    firing.refresh_from_db()
    assert firing.resolved_at is not None
    assert "RESOLVED Orders stuck" in alarm_emails(smtp_server)[1].subject


def test_an_email_that_fails_is_sent_at_the_next_evaluation(
    alarm_settings, managers, smtp_server, shopper, make_product
):
    three_failures_trip_the_failure_rate(alarm_settings, shopper, make_product)
    smtp_server.stop()
    evaluate_alarms()
    assert AlarmFiring.objects.get(rule="failure_rate").notified_at is None

    smtp_server.start()
    evaluate_alarms()

    assert len(alarm_emails(smtp_server)) == 1
    assert AlarmFiring.objects.get(rule="failure_rate").notified_at is not None


def test_an_alarm_on_a_default_install_emails_the_superuser(
    alarm_settings, smtp_server, shopper, make_product, monkeypatch
):
    alarm_settings.ALARM_EMAILS = []
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "owner@shop.example")
    call_command("ensure_admin", stdout=StringIO())  # what `make run` does, and nothing more
    three_failures_trip_the_failure_rate(alarm_settings, shopper, make_product)

    evaluate_alarms()

    [fired] = [m for m in smtp_server.received if "ALARM Orders failing" in m.subject]
    assert fired.recipients == ["owner@shop.example"]
    assert AlarmFiring.objects.get(rule="failure_rate").notified_to == ["owner@shop.example"]


def test_alarms_email_superusers_and_the_roles_that_act_on_orders_with_an_address(alarm_settings, transactional_db):
    User.objects.create_superuser("root", "root@shop.example", "x")
    User.objects.create_superuser("nomail", "", "x")
    User.objects.create_superuser("gone", "gone@shop.example", "x", is_active=False)
    create_staff("mo", "manager", email="mo@shop.example")
    create_staff("rae", "manager", email="rae@shop.example")
    create_staff("sam", "clerk", email="sam@shop.example")
    create_staff("aud", "auditor", email="aud@shop.example")

    assert alarm_recipients() == ["mo@shop.example", "rae@shop.example", "root@shop.example", ON_CALL]


def test_a_firing_with_nobody_to_tell_says_so_and_tells_the_first_recipient_once(
    alarm_settings, smtp_server, shopper, make_product, client
):
    alarm_settings.ALARM_EMAILS = []
    three_failures_trip_the_failure_rate(alarm_settings, shopper, make_product)

    evaluate_alarms()

    firing = AlarmFiring.objects.get(rule="failure_rate")
    assert (firing.notified_to, firing.told) == ([], "nobody")
    assert not [m for m in smtp_server.received if "ALARM" in m.subject]
    root = User.objects.create_superuser("root", "", "x")  # a superuser without an address
    client.force_login(root)
    pass_second_factor(client, authenticator_app(root))
    row = client.get("/admin/monitoring/alarmfiring/").content.decode()
    assert ">nobody</strong>" in row

    create_staff("mo", "manager", email=MANAGER_EMAIL)  # while it still fires
    evaluate_alarms()
    evaluate_alarms()

    [told] = alarm_emails(smtp_server)
    assert "ALARM Orders failing" in told.subject and told.recipients == [MANAGER_EMAIL]
    assert AlarmFiring.objects.get(rule="failure_rate").notified_to == [MANAGER_EMAIL]


def test_a_recipient_added_while_an_alarm_fires_hears_of_it_once_and_of_its_end(
    alarm_settings, managers, smtp_server, shopper, make_product
):
    three_failures_trip_the_failure_rate(alarm_settings, shopper, make_product)
    evaluate_alarms()

    create_staff("rae", "manager", email="rae@shop.example")
    evaluate_alarms()
    evaluate_alarms()

    late = [m for m in smtp_server.received if "rae@shop.example" in m.recipients]
    assert [m.recipients for m in late] == [["rae@shop.example"]]
    assert "ALARM Orders failing" in late[0].subject
    assert AlarmFiring.objects.get(rule="failure_rate").notified_to == [MANAGER_EMAIL, ON_CALL, "rae@shop.example"]

    time_passes(360)
    evaluate_alarms()

    [all_clear] = [m for m in smtp_server.received if "RESOLVED" in m.subject]
    assert sorted(all_clear.recipients) == sorted([MANAGER_EMAIL, ON_CALL, "rae@shop.example"])


def rules_firing() -> set[str]:
    return {firing.rule for firing in evaluate_alarms()}


def test_without_a_cluster_the_heartbeat_alarm_fires(settings, db):
    settings.ALARM_MIN_CLUSTERS = 1
    caches["queue_status"].clear()  # the last heartbeat of a cluster an earlier test stopped
    assert "cluster_heartbeat" in rules_firing()


def test_old_queued_tasks_fire_the_queue_alarm(alarm_settings, shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=10)
    shopper.buys({"MUG-001": 1})
    assert "queue_age" not in rules_firing()
    alarm_settings.ALARM_QUEUE_AGE_SECONDS = 0  # the task queued above has waited longer than that
    assert "queue_age" in rules_firing()


def test_stripe_events_left_unprocessed_fire_the_webhook_alarm(alarm_settings, db):
    event = StripeEvent.objects.create(event_id="evt_1", type="charge.refunded", payload={}, error="KeyError: 'x'")
    assert "webhook_failures" not in rules_firing()

    StripeEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(minutes=6))
    assert "webhook_failures" in rules_firing()
    firing = AlarmFiring.objects.get(rule="webhook_failures")
    assert firing.details["errors"] == ["evt_1: KeyError: 'x'"]


def test_an_authorisation_about_to_lapse_uncaptured_fires_and_flags_its_order(
    alarm_settings, shopper, make_product, held_pipeline
):
    make_product("MUG-001", on_hand=10)
    order = shopper.buys({"MUG-001": 1})
    held_pipeline.run_by_hand(order, "process_payment")
    assert Payment.objects.get(order=order).status == Payment.Status.AUTHORIZED
    assert "authorisations_lapsing" not in rules_firing()

    lapses_at = Payment.objects.get(order=order).authorization_expires_at
    assert lapses_at > timezone.now() + timedelta(days=6)  # the simulated gateway's window, read from it
    Payment.objects.filter(order=order).update(authorization_expires_at=timezone.now() + timedelta(hours=23))

    assert "authorisations_lapsing" in rules_firing()
    order.refresh_from_db()
    assert order.needs_attention


def test_low_stock_fires_until_restocked(alarm_settings, make_product):
    from inventory.models import StockMovement
    from inventory.services import adjust_stock

    product = make_product("MUG-001", on_hand=3)
    assert "low_stock" in rules_firing()
    assert AlarmFiring.objects.get(rule="low_stock").details == {"products": {"MUG-001": 3}}

    adjust_stock(product=product, delta=50, reason=StockMovement.Reason.IMPORT, note="restock")
    assert "low_stock" not in rules_firing()


def test_orders_the_reconciler_flagged_fire_until_a_manager_clears_them(alarm_settings, shopper, make_product):
    from backoffice import actions
    from orders import history

    make_product("MUG-001", on_hand=10)
    order = shopper.buys({"MUG-001": 1})
    history.flag_order(
        order, actor=history.RECONCILER, step="reconcile_payments", finding="amount (pi_1)", message="amount: differs"
    )
    assert "reconciler_mismatches" in rules_firing()

    actions.mark_handled(order, manager="boss", reason="Stripe's fee, booked by hand", action_token="t1")
    assert "reconciler_mismatches" not in rules_firing()


def move_on_hand_behind_the_ledger(on_hand: int) -> None:
    """On hand moved without a ledger line (or moved back): what the audit exists to catch."""
    Stock.objects.filter(product__sku="MUG-001").update(on_hand=on_hand)


def test_an_invariant_the_audit_finds_broken_fires(alarm_settings, make_product):
    make_product("MUG-001", on_hand=5)
    scheduled_audit()
    assert "invariants" not in rules_firing()

    move_on_hand_behind_the_ledger(7)
    assert "invariants" not in rules_firing(), "the alarm reads the audit's runs, it does not run the checks"
    scheduled_audit()

    assert "invariants" in rules_firing()
    assert AlarmFiring.objects.get(rule="invariants").details == {
        "violations": ["ledger sums to on hand: MUG-001: ledger 5, on hand 7"]
    }


@pytest.mark.usefixtures("order_topic")
def test_a_firing_and_its_end_are_published_to_the_sns_topic(alarm_settings, make_product, request):
    make_product("MUG-001", on_hand=50)  # well stocked: the ledger is the only alarm
    for on_hand in (52, 50):
        move_on_hand_behind_the_ledger(on_hand)
        scheduled_audit()
        evaluate_alarms()

    topic = request.getfixturevalue("order_topic")  # by name: a parameter would shadow the import
    published = [json.loads(envelope["Message"]) for envelope in received_messages(topic)]
    assert [(m["alarm"], m["event"]) for m in published] == [("invariants", "firing"), ("invariants", "resolved")]
    assert published[0]["details"] == {"violations": ["ledger sums to on hand: MUG-001: ledger 50, on hand 52"]}
