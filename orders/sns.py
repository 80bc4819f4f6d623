"""Publishing to an SNS topic: final order states (and the alarms' news); the one module that talks to SNS.

The message is JSON (reference, state, email, total, currency) with the state also as a
message attribute, so subscribers can filter on it. On a FIFO topic the order reference
groups the messages and reference + state deduplicates a retried publish.
"""

import json
from functools import lru_cache

import boto3
from django.conf import settings

from orders.models import Order


@lru_cache(maxsize=4)
def _sns_client(region: str, endpoint_url: str):
    # A session of its own: boto3's default session is not safe to share across threads.
    return boto3.session.Session().client("sns", region_name=region, endpoint_url=endpoint_url or None)


def order_state_message(order: Order) -> dict:
    """What subscribers receive about an order that reached a final state."""
    return {
        "reference": order.reference,
        "state": order.state,
        "email": order.email,
        "total": str(order.total),
        "currency": order.currency,
    }


def publish_final_state(order: Order) -> str:
    """Publish the order's final state to NOTIFY_SNS_TOPIC_ARN; the SNS message id."""
    return publish_message(
        order_state_message(order),
        attributes={"state": order.state},
        group_id=order.reference,
        deduplication_id=f"{order.reference}:{order.state}",
    )


def publish_message(message: dict, *, attributes: dict[str, str], group_id: str, deduplication_id: str) -> str:
    """Publish a JSON message to NOTIFY_SNS_TOPIC_ARN with string attributes subscribers can
    filter on; on a FIFO topic grouped and deduplicated by the ids given. The SNS message id."""
    topic_arn = settings.NOTIFY_SNS_TOPIC_ARN
    region = topic_arn.split(":")[3]  # arn:aws:sns:<region>:<account>:<topic>
    request = {
        "TopicArn": topic_arn,
        "Message": json.dumps(message),
        "MessageAttributes": {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
    }
    if topic_arn.endswith(".fifo"):
        request["MessageGroupId"] = group_id
        request["MessageDeduplicationId"] = deduplication_id
    return _sns_client(region, settings.AWS_SNS_ENDPOINT_URL).publish(**request)["MessageId"]
