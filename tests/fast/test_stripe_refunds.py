"""Managers refund (in part or in full) and cancel orders from the order admin, on Stripe."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User

from payments.models import Refund
from payments.reconciliation import reconcile_payments
from payments.refunds import issue_refund
from tests.support.invariants import stock_of


@pytest.fixture(autouse=True)
def _admin_pages_without_collectstatic(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def refund_page(order) -> str:
    return f"/admin/orders/order/{order.pk}/refund/"


def cancel_confirmed(client, order, reason="Cancelled by the shop."):
    """The cancel action, confirmed on its confirmation page."""
    return client.post(
        "/admin/orders/order/",
        {"action": "cancel_selected", "_selected_action": [order.pk], "confirmed": "yes", "reason": reason},
    )


def refunded_at_stripe(fake_stripe, order) -> int:
    [intent] = fake_stripe.intents_for(order.reference)
    return fake_stripe.charge_of(intent["id"])["amount_refunded"]


def test_a_manager_refunds_part_of_a_completed_order_then_the_rest(shopper, make_product, fake_stripe, manager):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    assert "Refund all or part" in manager.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "25.00 USD" in manager.get(refund_page(order)).content.decode()

    response = manager.post(
        refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "10.00", "reason": "Chipped mug"}
    )

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert (order.payment.status, order.payment.amount_refunded) == ("partially_refunded", Decimal("10.00"))
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.requested_by) == (Decimal("10.00"), "succeeded", "manager")
    assert refunded_at_stripe(fake_stripe, order) == 1000
    [call] = fake_stripe.calls_of("create_refund")
    assert call.idempotency_key == f"{order.reference}:refund-{refund.pk}"
    assert [e.step for e in order.events.filter(step__in=["request_refund", "refund_payment"])] == [
        "request_refund",
        "refund_payment",
    ]

    manager.post(
        refund_page(order), {"refund": "all", "refund_reason": "damaged", "reason": "Refunded in full."}
    )  # all that is left

    order.refresh_from_db()
    assert (order.payment.status, order.payment.amount_refunded) == ("refunded", Decimal("25.00"))
    assert refunded_at_stripe(fake_stripe, order) == 2500
    assert sorted(r.amount for r in Refund.objects.all()) == [Decimal("10.00"), Decimal("15.00")]
    assert stock_of("MUG-001").on_hand == 3  # a refund gives money back, not stock


def test_a_refund_sent_again_is_not_made_twice_but_two_equal_refunds_are_two(
    shopper, make_product, fake_stripe, manager
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    manager.post(refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "5.00", "reason": "test"})
    manager.post(refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "5.00", "reason": "test"})
    first, second = Refund.objects.all()
    Refund.objects.filter(pk=first.pk).update(status="pending")  # as if its task ran again
    issue_refund(first.pk)

    assert sorted(r["amount"] for r in fake_stripe.refunds.values()) == [500, 500]
    assert refunded_at_stripe(fake_stripe, order) == 1000


def test_refunding_more_than_is_left_is_refused_and_nothing_happens(shopper, make_product, fake_stripe, manager):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    response = manager.post(
        refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "25.01", "reason": "test"}
    )

    assert response.status_code == 200
    assert "At most 25.00 USD is left to refund." in response.content.decode()
    assert Refund.objects.count() == 0
    assert not fake_stripe.calls_of("create_refund")


def test_a_yen_refund_is_sent_in_whole_yen_and_fractions_of_a_yen_are_refused(
    shopper, make_product, fake_stripe, manager
):
    make_product("TEA-JP", price="1200", currency="JPY", on_hand=5)
    order = shopper.buys({"TEA-JP": 2})

    refused = manager.post(
        refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "0.50", "reason": "test"}
    )
    manager.post(refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "500", "reason": "test"})

    assert "is not an amount of JPY" in refused.content.decode()
    assert [r["amount"] for r in fake_stripe.refunds.values()] == [500]
    order.refresh_from_db()
    assert order.payment.amount_refunded == Decimal("500")


def test_an_order_not_yet_captured_cannot_be_refunded(shopper, make_product, fake_stripe, manager):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_card_threeDSecure2Required")

    response = manager.post(
        refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "", "reason": "test"}
    )

    assert "no captured payment to refund" in response.content.decode()
    assert Refund.objects.count() == 0


def test_a_refund_whose_answer_was_lost_stays_pending_and_the_reconciler_settles_it_once(
    shopper, make_product, fake_stripe, manager, settings
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    fake_stripe.hang_next("create_refund")

    manager.post(refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "7.50", "reason": "test"})
    refund = Refund.objects.get()
    assert refund.status == "pending"
    order.refresh_from_db()
    assert order.payment.amount_refunded == 0

    settings.PAYMENT_RECONCILE_AFTER_SECONDS = 0
    reconcile_payments()

    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == "succeeded"
    assert order.payment.amount_refunded == Decimal("7.50")
    assert len(fake_stripe.refunds) == 1


def test_a_refund_stripe_refuses_is_marked_failed_with_the_reason(shopper, make_product, fake_stripe, manager):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    [intent] = fake_stripe.intents_for(order.reference)
    from payments.gateways import get_gateway

    get_gateway().refund(provider_reference=intent["id"], amount_minor=2000, idempotency_key="dashboard")

    manager.post(
        refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "10.00", "reason": "test"}
    )  # our books still think 25.00 are left

    refund = Refund.objects.get()
    assert refund.status == "failed"
    assert "greater than unrefunded amount" in refund.error
    assert order.events.filter(step="refund_payment", outcome="failed").exists()
    order.refresh_from_db()
    assert order.payment.amount_refunded == Decimal("20.00")  # our books caught up with Stripe's


def test_cancelling_a_partly_refunded_confirmed_order_refunds_the_rest(
    shopper, make_product, fake_stripe, manager, held_pipeline
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = held_pipeline.run_by_hand(shopper.buys({"MUG-001": 2}), "process_payment", "update_inventory")
    held_pipeline.run_inline()  # the refunds and the compensation run as in production
    manager.post(
        refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "10.00", "reason": "test"}
    )

    cancel_confirmed(manager, order)

    order.refresh_from_db()
    assert order.state == "CANCELLED"
    assert refunded_at_stripe(fake_stripe, order) == 2500
    assert sorted(r["amount"] for r in fake_stripe.refunds.values()) == [1000, 1500]
    assert (order.payment.status, order.payment.amount_refunded) == ("refunded", Decimal("25.00"))
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)


def test_a_manager_cancels_an_order_in_progress_from_the_admin_and_the_hold_is_voided(
    shopper, make_product, fake_stripe, manager, held_pipeline
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = held_pipeline.run_by_hand(shopper.buys({"MUG-001": 2}), "process_payment")
    held_pipeline.run_inline()  # the compensation runs as in production

    cancel_confirmed(manager, order)

    order.refresh_from_db()
    assert order.state == "CANCELLED"
    assert order.failure_reason == "Cancelled by the shop."
    assert order.events.get(step="cancel_order").actor == "manager"
    assert fake_stripe.intents_for(order.reference)[0]["status"] == "canceled"
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)


def test_staff_who_may_only_view_orders_can_neither_refund_nor_cancel(shopper, make_product, fake_stripe, client):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    client.force_login(viewer)

    page = client.get(refund_page(order))
    refused = client.post(
        refund_page(order), {"refund": "part", "refund_reason": "damaged", "amount": "5.00", "reason": "sneaky"}
    )

    assert page.status_code == refused.status_code == 403
    assert "orders.refund_order" in refused.content.decode()  # the refusal names the missing permission
    assert Refund.objects.count() == 0
    assert not fake_stripe.calls_of("create_refund")
