"""Final order states published to SNS (ministack on loopback), read back from a subscribed SQS queue."""

import json

import pytest

from tests.support.aws import received_messages


def test_a_completed_order_is_published_once_with_reference_state_email_and_total(shopper, make_product, order_topic):
    make_product("MUG-001", price="12.50", on_hand=5)

    order = shopper.buys({"MUG-001": 2})

    assert order.state == "COMPLETED"
    envelopes = received_messages(order_topic)
    assert len(envelopes) == 1
    assert envelopes[0]["TopicArn"] == order_topic["topic_arn"]
    assert json.loads(envelopes[0]["Message"]) == {
        "reference": order.reference,
        "state": "COMPLETED",
        "email": "shopper@example.com",
        "total": "25.00",
        "currency": "USD",
    }
    assert envelopes[0]["MessageAttributes"]["state"]["Value"] == "COMPLETED"


@pytest.mark.parametrize(
    ("payment_method", "on_hand", "state"),
    [
        ("pm_card_visa", 1, "REJECTED"),
        ("pm_card_chargeDeclined", 5, "PAYMENT_FAILED"),
        ("pm_sim_unavailable", 5, "FAILED"),
    ],
)
def test_every_failure_end_is_published_too(shopper, make_product, order_topic, payment_method, on_hand, state):
    make_product("MUG-001", on_hand=on_hand)

    order = shopper.buys({"MUG-001": 2}, pay_with=payment_method)

    assert order.state == state
    [envelope] = received_messages(order_topic)
    assert json.loads(envelope["Message"])["reference"] == order.reference
    assert json.loads(envelope["Message"])["state"] == state


def test_publishing_again_after_a_success_sends_nothing_more(shopper, make_product, order_topic):
    from orders import pipeline

    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    assert len(received_messages(order_topic)) == 1

    pipeline.run_step(order.pk, "publish_order_state")  # a duplicate nudge from the queue

    assert received_messages(order_topic) == []


def test_without_a_topic_nothing_is_published(shopper, make_product, order_topic, settings):
    settings.NOTIFY_SNS_TOPIC_ARN = ""
    make_product("MUG-001", on_hand=5)

    order = shopper.buys({"MUG-001": 2})

    assert order.state == "COMPLETED"
    assert received_messages(order_topic) == []
    assert not order.events.filter(step="publish_order_state").exists()
