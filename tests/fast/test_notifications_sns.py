"""Final order states published to SNS (ministack on loopback), read back from a subscribed SQS queue."""

import json
import uuid

import pytest

from orders import sns


@pytest.fixture
def order_topic(local_aws, settings, monkeypatch):
    """An SNS topic with an SQS queue subscribed to it; the app publishes to the topic."""
    name = f"orders-{uuid.uuid4().hex[:8]}"
    topic_arn = local_aws.client("sns").create_topic(Name=name)["TopicArn"]
    sqs = local_aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                        }
                    ],
                }
            )
        },
    )
    local_aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    for variable, value in local_aws.environ().items():
        monkeypatch.setenv(variable, value)
    settings.NOTIFY_SNS_TOPIC_ARN = topic_arn
    settings.AWS_SNS_ENDPOINT_URL = local_aws.endpoint_url
    sns._sns_client.cache_clear()
    yield {"sqs": sqs, "queue_url": queue_url, "topic_arn": topic_arn}
    sns._sns_client.cache_clear()


def received_messages(topic) -> list[dict]:
    """Every SNS notification delivered to the queue so far (the SNS envelopes)."""
    messages = []
    while True:
        batch = topic["sqs"].receive_message(QueueUrl=topic["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not batch.get("Messages"):
            return messages
        for message in batch["Messages"]:
            messages.append(json.loads(message["Body"]))
            topic["sqs"].delete_message(QueueUrl=topic["queue_url"], ReceiptHandle=message["ReceiptHandle"])


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
