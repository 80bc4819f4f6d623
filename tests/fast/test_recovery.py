"""Recovery in seconds (orders.recovery): side steps' retries wait as rows, not in a worker;
the pipeline tick queues them when due and nudges orders whose message was lost, never one
a worker is still working on."""

import time
from datetime import timedelta

from django.utils import timezone
from django_q.models import OrmQ

from orders import pipeline
from orders.models import Order, OrderEvent, PipelineTick, ScheduledRetry
from orders.recovery import claim_tick, fire_due_retries, nudge_lost_orders
from payments.models import SimulatedPaymentIntent
from tests.support.due_retries import run_due_retries
from tests.support.faults import break_receipt_storage
from tests.support.waiting import wait_until


def test_a_failing_receipt_frees_the_worker_and_its_retry_runs_when_due_not_before(
    shopper, make_product, settings, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    held_pipeline.run_by_hand(order, "process_payment", "update_inventory")
    settings.PIPELINE_BACKOFF_SCALE = 1  # the first retry is due 1 s after the failure
    blocked = break_receipt_storage(settings)

    started = time.monotonic()
    pipeline.advance_order(order.pk)

    assert time.monotonic() - started < 1  # no backoff slept in the worker
    retry = ScheduledRetry.objects.get(order=order)
    assert (retry.step, retry.attempt) == ("generate_receipt", 1)
    event = OrderEvent.objects.get(order=order, step="generate_receipt", outcome="retrying")
    assert event.parameters["due_at"] == retry.due_at.isoformat()
    assert 0.8 < (retry.due_at - event.created_at).total_seconds() < 1.2

    held_pipeline.run_inline()
    assert fire_due_retries(timezone.now()) == 0  # not before its time
    wait_until(lambda: retry.due_at <= timezone.now(), timeout=5)
    assert fire_due_retries(timezone.now()) == 1  # it runs, and fails again: the storage is still broken
    assert ScheduledRetry.objects.get(order=order).attempt == 2
    blocked.unlink()
    run_due_retries()
    order.refresh_from_db()
    assert order.state == "COMPLETED" and not order.needs_attention
    assert not ScheduledRetry.objects.exists()
    outcomes = list(OrderEvent.objects.filter(order=order, step="generate_receipt").values_list("outcome", flat=True))
    assert outcomes == ["retrying", "retrying", "succeeded"]


def test_only_one_cluster_runs_each_tick(transactional_db):
    now = timezone.now()

    assert claim_tick(now, 1.0)
    assert not claim_tick(now + timedelta(seconds=0.1), 1.0)  # another cluster, the same tick
    assert claim_tick(now + timedelta(seconds=1), 1.0)


def test_the_tick_nudges_a_lost_order_once_and_leaves_flagged_waiting_and_leased_orders_alone(
    shopper, make_product, settings, held_pipeline
):
    make_product("MUG-001", on_hand=50)
    lost, flagged, leased, retrying = (shopper.buys({"MUG-001": 1}) for _ in range(4))
    held_pipeline.lose_queued()
    now = timezone.now() + timedelta(seconds=settings.ORDER_NUDGE_AFTER_SECONDS + 1)
    Order.objects.filter(pk=flagged.pk).update(needs_attention=True)
    Order.objects.filter(pk=leased.pk).update(worked_until=now + timedelta(seconds=30))
    ScheduledRetry.objects.create(order=retrying, step="generate_receipt", attempt=1, due_at=now + timedelta(hours=1))

    assert nudge_lost_orders(now) == 1
    assert held_pipeline.queued() == [("orders.tasks.advance_order", (lost.pk,))]
    assert nudge_lost_orders(now + timedelta(seconds=1)) == 0  # its nudge holds a lease of its own


def test_a_receipt_outage_does_not_hold_the_only_worker_from_the_payments_of_other_orders(shop, make_product):
    make_product("MUG-001", price="12.50", on_hand=20)
    blocked = shop.var_dir / "private"
    blocked.write_text("not a folder")  # receipt storage broken for every order
    shop.start_web()
    # Backoffs of 4 s and 8 s: slept in the one worker, four orders would take 48 s to pay.
    shop.start_cluster(workers=1, PIPELINE_BACKOFF_SCALE="4")

    references = [shop.place_order([("MUG-001", 1)])["reference"] for _ in range(4)]

    def all_paid_with_their_receipts_waiting() -> bool:
        paid = Order.objects.filter(reference__in=references, state="CONFIRMED", payment__status="captured")
        waiting = ScheduledRetry.objects.filter(order__reference__in=references, step="generate_receipt")
        return paid.count() == 4 and waiting.count() == 4

    wait_until(all_paid_with_their_receipts_waiting, timeout=12, message=lambda: shop.logs()[-3000:])
    blocked.unlink()
    for reference in references:
        assert shop.wait_for_final_state(reference)["state"] == "COMPLETED"
    assert not ScheduledRetry.objects.exists()


def test_an_order_whose_message_was_lost_is_final_within_seconds_with_a_cluster_running(shop, make_product):
    make_product("MUG-001", price="12.50", on_hand=5)
    shop.start_web()
    placed = shop.place_order([("MUG-001", 1)])
    assert OrmQ.objects.filter(key=shop.cluster_name).delete()[0] == 1  # the message is lost
    lost_at = time.monotonic()

    shop.start_cluster(ORDER_NUDGE_AFTER_SECONDS="2")
    body = shop.wait_for_final_state(placed["reference"], timeout=20)

    assert body["state"] == "COMPLETED", body
    assert time.monotonic() - lost_at < 2 + 10  # the nudge, a tick, the cluster's own start
    assert SimulatedPaymentIntent.objects.get().calls == 1
    assert len(shop.emails()) == 1


def test_an_order_whose_payment_hangs_is_not_nudged_while_the_worker_waits_for_the_provider(shop, make_product):
    make_product("MUG-001", price="12.50", on_hand=5)
    shop.start_web()
    cluster = shop.start_cluster(ORDER_NUDGE_AFTER_SECONDS="1")

    reference = shop.place_order([("MUG-001", 1)], payment_method="pm_sim_hang")["reference"]
    intent = wait_until(lambda: SimulatedPaymentIntent.objects.filter(idempotency_key__startswith=reference).first())
    order = Order.objects.get(reference=reference)
    assert order.worked_until > timezone.now() + timedelta(seconds=30)  # the payment step's lease
    # Ticks well past the nudge delay: a nudge would have called the provider again by then.
    wait_until(
        lambda: PipelineTick.objects.filter(ran_at__gt=order.updated_at + timedelta(seconds=5)).exists(),
        timeout=15,
    )

    intent.refresh_from_db()
    assert intent.calls == 1
    assert Order.objects.get(reference=reference).state == "VALIDATED"
    assert "nudged" not in shop.logs()
    cluster.kill()
