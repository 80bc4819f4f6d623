"""Shopper emails over real SMTP (aiosmtpd on loopback): content, retries, at most one of each."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import Stock
from orders import pipeline
from orders.models import Notification, Order, OrderEvent
from orders.tasks import sweep_stuck_orders
from payments.models import Payment
from tests.support.concurrency import all_at_once
from tests.support.due_retries import run_due_retries
from tests.support.settings_probe import in_fresh_process


def confirmed_awaiting_email(shopper, held_pipeline) -> Order:
    """An order run by hand through its steps up to (not including) the email."""
    order = shopper.buys({"MUG-001": 2})  # its stock reserved as it was placed
    held_pipeline.run_by_hand(order, "process_payment", "update_inventory", "generate_receipt")
    assert order.state == "CONFIRMED" and order.receipt.stored_at
    return order


def test_a_completed_order_sends_one_confirmation_with_its_summary_and_receipt_link(
    shopper, make_product, smtp_server, settings
):
    settings.PUBLIC_BASE_URL = "https://shop.example"
    settings.SHOP_NAME = "Corner Shop"
    make_product("MUG-001", price="12.50", on_hand=5, name="Blue mug")

    order = shopper.buys({"MUG-001": 2}, email="ada@example.com")

    assert order.state == "COMPLETED"
    assert len(smtp_server.received) == 1
    sent = smtp_server.received[0]
    assert sent.recipients == ["ada@example.com"]
    assert sent.mail_from == settings.DEFAULT_FROM_EMAIL
    assert sent.subject == f"Your order {order.reference} is confirmed"
    receipt_link = f"https://shop.example/api/orders/{order.reference}/receipt"
    text, html = sent.part("text/plain"), sent.part("text/html")
    for body in (text, html):
        assert "Corner Shop" in body
        assert "Blue mug" in body and "MUG-001" in body
        assert "25.00 USD" in body
        assert "Tax (0%)" in body
        assert receipt_link in body
    assert f'href="{receipt_link}"' in html
    assert Notification.objects.get(order=order).status == "sent"


@pytest.mark.parametrize(
    ("payment_method", "on_hand", "state", "reason"),
    [
        ("pm_card_visa", 1, "REJECTED", "Not enough stock: MUG-001: 2 requested, 1 available."),
        ("pm_card_chargeDeclined", 5, "PAYMENT_FAILED", "declined"),
        ("pm_sim_unavailable", 5, "FAILED", "We could not process your order"),
    ],
)
def test_an_order_that_cannot_be_processed_sends_one_failure_email_with_a_reason_the_shopper_may_see(
    shopper, make_product, smtp_server, payment_method, on_hand, state, reason
):
    make_product("MUG-001", on_hand=on_hand)

    order = shopper.buys({"MUG-001": 2}, pay_with=payment_method)

    assert order.state == state
    assert len(smtp_server.received) == 1
    sent = smtp_server.received[0]
    assert sent.recipients == ["shopper@example.com"]
    assert sent.subject == f"We could not process your order {order.reference}"
    for body in (sent.part("text/plain"), sent.part("text/html")):
        assert reason in body
        assert order.failure_reason in body
        assert "receipt" not in body.lower()
        assert "Traceback" not in body and "Error" not in body

    pipeline.run_step(order.pk, "send_failure_notification")  # the step runs again: no second email
    assert len(smtp_server.received) == 1


def test_a_down_smtp_server_is_retried_with_backoff_and_one_email_arrives_when_it_is_back(
    shopper, make_product, smtp_server, settings, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = confirmed_awaiting_email(shopper, held_pipeline)
    settings.PIPELINE_BACKOFF_SCALE = 1  # first retry after 1 s, the next after 2 s
    smtp_server.stop()
    first_send_refused = OrderEvent.objects.filter(order=order, step="send_notification", outcome="retrying").exists
    comeback = smtp_server.start_when(first_send_refused)  # back up during the first backoff

    pipeline.advance_order(order.pk)  # the send is refused: its retry waits as a row, the worker is free

    comeback.join()
    held_pipeline.run_inline()
    assert run_due_retries() == 1
    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert not order.needs_attention
    assert len(smtp_server.received) == 1
    attempts = list(OrderEvent.objects.filter(order=order, step="send_notification").values_list("outcome", "error"))
    assert attempts[0][0] == "retrying" and "Connection refused" in attempts[0][1]
    assert attempts[-1][0] == "succeeded"


def test_a_permanently_down_smtp_server_never_undoes_the_sale_and_flags_the_order(
    shopper, make_product, smtp_server, settings
):
    product = make_product("MUG-001", on_hand=5)
    smtp_server.stop()

    order = shopper.buys({"MUG-001": 2})
    run_due_retries()

    order.refresh_from_db()
    assert order.state == "CONFIRMED"
    assert order.needs_attention
    assert Payment.objects.get(order=order).status == "captured"
    assert Stock.objects.get(product=product).on_hand == 3
    retries = OrderEvent.objects.filter(order=order, step="send_notification")
    assert [e.outcome for e in retries] == ["retrying"] * 4 + ["failed"]
    assert Notification.objects.get(order=order).status == "failed"

    # Later the server is back and the sweeper re-drives the order: it completes, one email.
    smtp_server.start()
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    sweep_stuck_orders()
    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert len(smtp_server.received) == 1


@pytest.mark.requires_postgres
def test_two_workers_sending_the_same_confirmation_at_once_send_one_email(
    shopper, make_product, smtp_server, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = confirmed_awaiting_email(shopper, held_pipeline)
    smtp_server.handler.delay_seconds = 2  # the first sender is still mid-send when the second arrives

    all_at_once(lambda _: pipeline.advance_order(order.pk), 2)

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert not order.needs_attention
    assert len(smtp_server.received) == 1
    outcomes = sorted(
        OrderEvent.objects.filter(order=order, step="send_notification").values_list("outcome", flat=True)
    )
    assert outcomes == ["skipped", "succeeded"]


def test_email_host_in_the_environment_switches_to_smtp_with_djangos_setting_names(tmp_path):
    environ = {
        "EMAIL_HOST": "smtp.example",
        "EMAIL_PORT": "2525",
        "EMAIL_USE_TLS": "true",
        "EMAIL_HOST_USER": "shop",
        "EMAIL_HOST_PASSWORD": "secret",
        "EMAIL_TIMEOUT": "7",
        "DEFAULT_FROM_EMAIL": "orders@corner.example",
    }
    code = """
from django.core.mail import get_connection
backend = get_connection()
result = [type(backend).__module__, backend.host, backend.port, backend.use_tls, backend.username,
          backend.password, backend.timeout, settings.DEFAULT_FROM_EMAIL]
"""

    assert in_fresh_process(tmp_path, environ, code) == [
        "django.core.mail.backends.smtp",
        "smtp.example",
        2525,
        True,
        "shop",
        "secret",
        7,
        "orders@corner.example",
    ]
    without = in_fresh_process(tmp_path, {}, "result = settings.EMAIL_BACKEND")
    assert without == "django.core.mail.backends.console.EmailBackend"


def test_a_server_that_stores_the_message_but_answers_after_the_timeout_gets_one_email_and_the_order_is_flagged(
    shopper, make_product, smtp_server, settings, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = confirmed_awaiting_email(shopper, held_pipeline)
    settings.EMAIL_TIMEOUT = 1
    smtp_server.handler.answer_delay_seconds = 3  # keeps the message, answers DATA after the timeout

    pipeline.advance_order(order.pk)

    order.refresh_from_db()
    assert order.state == "COMPLETED"  # the sale and its receipt stand
    assert order.needs_attention
    notification = Notification.objects.get(order=order)
    assert notification.status == "uncertain"
    assert "Timeout" in notification.error or "timed out" in notification.error
    flag = OrderEvent.objects.get(order=order, kind="email_uncertain")
    assert flag.actor_kind == "pipeline"
    assert "may or may not have reached the shopper; resend it if they ask" in flag.summary
    assert not OrderEvent.objects.filter(order=order, step="send_notification", outcome="retrying").exists()

    # Long after any claim would have gone stale, the step and the sweeper run again: nothing more is sent.
    smtp_server.handler.answer_delay_seconds = 0
    settings.NOTIFICATION_CLAIM_SECONDS = 0
    held_pipeline.run_inline()
    pipeline.run_step(order.pk, "send_notification")
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    sweep_stuck_orders()
    assert len(smtp_server.received) == 1
    assert Notification.objects.get(order=order).status == "uncertain"
    assert OrderEvent.objects.filter(order=order, kind="email_uncertain").count() == 1


def test_a_claim_left_by_a_worker_that_died_mid_send_is_never_sent_again_and_flags_the_order(
    shopper, make_product, smtp_server, settings, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = confirmed_awaiting_email(shopper, held_pipeline)
    # What a worker killed mid-send leaves: its claim, never settled.
    Notification.objects.create(order=order, kind="confirmation", claimed_at=timezone.now() - timedelta(minutes=5))
    settings.NOTIFICATION_CLAIM_SECONDS = 120

    pipeline.advance_order(order.pk)

    order.refresh_from_db()
    assert smtp_server.received == []
    assert order.state == "COMPLETED" and order.needs_attention
    assert Notification.objects.get(order=order).status == "uncertain"
    assert "stopped mid-send" in OrderEvent.objects.get(order=order, kind="email_uncertain").summary


def test_a_manager_resends_a_confirmation_whose_first_send_was_uncertain(
    shopper, make_product, smtp_server, settings, held_pipeline
):
    from backoffice import actions as manager_actions

    make_product("MUG-001", on_hand=5)
    order = confirmed_awaiting_email(shopper, held_pipeline)
    settings.EMAIL_TIMEOUT = 1
    smtp_server.handler.answer_delay_seconds = 3
    pipeline.advance_order(order.pk)
    smtp_server.handler.answer_delay_seconds = 0

    result = manager_actions.resend_confirmation(order, manager="boss", reason="shopper asked", action_token="t1")

    assert "copy of the confirmation was sent" in result.message
    assert [m.subject for m in smtp_server.received] == [
        f"Your order {order.reference} is confirmed",
        f"Your order {order.reference} is confirmed (copy sent again)",
    ]


def test_a_refused_connection_is_retried_and_the_email_goes_once_the_server_is_back(
    shopper, make_product, smtp_server, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = confirmed_awaiting_email(shopper, held_pipeline)
    smtp_server.stop()

    pipeline.advance_order(order.pk)  # refused at connect: nothing was handed over

    assert Notification.objects.get(order=order).status == "failed"
    smtp_server.start()
    held_pipeline.run_inline()
    run_due_retries()
    order.refresh_from_db()
    assert order.state == "COMPLETED" and not order.needs_attention
    assert len(smtp_server.received) == 1
    assert Notification.objects.get(order=order).status == "sent"
