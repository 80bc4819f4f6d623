"""A local AWS on loopback for the tests: ministack with AUTH=true, started per test session.

With AUTH=true ministack checks what real S3 checks and moto does not: a presigned URL's
SigV4 signature and its expiry, and it refuses anonymous reads of private objects. Its
root credentials are test/test. The server gets a socket already bound to an ephemeral
port on 127.0.0.1, so nothing races for the port and nothing listens beyond loopback.
"""

import json
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass

import boto3
import pytest
import requests
from botocore.config import Config

from orders import sns
from tests.support.waiting import wait_until

ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"


@dataclass(frozen=True)
class LocalAws:
    endpoint_url: str
    region: str = REGION
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def client(self, service: str):
        """A boto3 client for this server, signing with the root credentials."""
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
        )

    def environ(self) -> dict[str, str]:
        """The environment variables that point the app's AWS clients here."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }


def _wait_until_ready(endpoint_url: str, process: subprocess.Popen, log_path) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"ministack exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            return requests.get(f"{endpoint_url}/_ministack/health", timeout=5).ok
        except requests.RequestException:
            # The socket listens from the start, so until the app is up a request is
            # accepted by the kernel and then times out rather than being refused.
            return False

    wait_until(
        ready, timeout=60, message=lambda: f"ministack did not answer within 60 s: {log_path.read_text()[-2000:]}"
    )


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory):
    """ministack (S3, SNS, SQS) with AUTH=true on 127.0.0.1:<ephemeral>, stopped after the session."""
    workdir = tmp_path_factory.mktemp("ministack")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "AUTH": "true",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "MINISTACK_REGION": REGION,
        "GATEWAY_PORT": str(port),
        "SERVICES": "s3,sns,sqs",
        # Nothing but the one HTTP port: no IoT or SFTP listeners, no state on disk.
        "IOT_MTLS_ENABLED": "0",
        "SFTP_ENABLED": "0",
        "PERSIST_STATE": "0",
        "S3_PERSIST": "0",
        "S3_DATA_DIR": str(workdir / "s3"),
        "STATE_DIR": str(workdir / "state"),
        "LOG_LEVEL": "WARNING",
    }
    log_path = workdir / "ministack.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "ministack.app:app", "--bind", f"fd://{listener.fileno()}"],
            pass_fds=[listener.fileno()],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    listener.close()  # the server holds its own copy of the socket
    endpoint_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(endpoint_url, process, log_path)
        yield LocalAws(endpoint_url=endpoint_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_bucket(local_aws) -> str:
    """A new, empty bucket on the local S3."""
    name = f"receipts-{uuid.uuid4().hex[:12]}"
    local_aws.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def receipts_on_s3(local_aws, s3_bucket, settings):
    """Point the receipts storage at the local S3 through the project's own settings code."""
    from config.settings import receipt_storage_from_env

    environ = {
        "AWS_STORAGE_BUCKET_NAME": s3_bucket,
        "AWS_S3_ENDPOINT_URL": local_aws.endpoint_url,
        "AWS_S3_REGION_NAME": local_aws.region,
        "AWS_ACCESS_KEY_ID": local_aws.access_key,
        "AWS_SECRET_ACCESS_KEY": local_aws.secret_key,
        "RECEIPT_LINK_TTL_SECONDS": str(settings.RECEIPT_LINK_TTL_SECONDS),
    }
    settings.STORAGES = {**settings.STORAGES, "receipts": receipt_storage_from_env(environ)}
    return s3_bucket


@pytest.fixture
def order_topic(local_aws, settings, monkeypatch):
    """An SNS topic (final order states and alarms go there) with an SQS queue subscribed to it;
    the app publishes to the topic."""
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
