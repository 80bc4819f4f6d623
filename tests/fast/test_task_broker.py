"""The database task broker on PostgreSQL: LISTEN/NOTIFY wakes the cluster, oldest task first."""

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from config import broker as broker_module
from config.broker import PostgresOrmBroker
from tests.support.environment import requires_postgres
from tests.support.statements import synchronous_commit


@pytest.fixture
def broker(transactional_db, monkeypatch):
    requires_postgres()
    monkeypatch.setattr(Conf, "ORM", "default")
    queue = PostgresOrmBroker(list_key="test-broker")
    yield queue
    queue._close_listener()
    OrmQ.objects.filter(key="test-broker").delete()


def package(name: str) -> str:
    return SignedPackage.dumps({"id": name, "name": name, "func": "math.floor", "args": (1.5,), "kwargs": {}})


def test_queued_tasks_come_out_oldest_first_and_each_once(broker):
    for name in ("first", "second", "third"):
        broker.enqueue(package(name))

    taken = [SignedPackage.loads(broker.dequeue()[0][1])["name"] for _ in range(3)]

    assert taken == ["first", "second", "third"]
    assert broker.dequeue() is None  # all three are locked for this cluster until acknowledged
    assert OrmQ.objects.filter(key="test-broker").count() == 3


def test_an_enqueue_in_a_transaction_notifies_after_its_commit_not_in_it(broker):
    # In it, the transaction would commit under PostgreSQL's database-wide NOTIFY lock.
    with CaptureQueriesContext(connection) as sent:
        with transaction.atomic():
            broker.enqueue(package("accepted"))
            in_transaction = [q["sql"] for q in sent.captured_queries if "pg_notify" in q["sql"]]
        after_commit = [q["sql"] for q in sent.captured_queries if "pg_notify" in q["sql"]]

    assert in_transaction == []
    assert len(after_commit) == 1


def test_an_enqueue_after_the_commit_writes_the_row_and_its_notify_in_one_statement(broker):
    # How every task of the shop is queued (framework/queue.py: once its transaction commits).
    with CaptureQueriesContext(connection) as sent:
        task_id = broker.enqueue(package("accepted"))

    statements = [q["sql"] for q in sent.captured_queries]
    assert len(statements) == 1 and "pg_notify" in statements[0] and "INSERT" in statements[0], statements
    assert OrmQ.objects.get(pk=task_id).payload == package("accepted")
    assert SignedPackage.loads(broker.dequeue()[0][1])["name"] == "accepted"


def test_a_task_queued_after_the_commit_does_not_wait_for_the_disk(broker):
    # A nudge a database crash loses is sent again by the pipeline tick: not worth a WAL flush.
    with CaptureQueriesContext(connection) as sent:
        broker.enqueue(package("accepted"))

    assert "synchronous_commit" in sent.captured_queries[0]["sql"]
    assert synchronous_commit() == "on"  # for that statement's own transaction only


def test_a_task_queued_in_a_transaction_leaves_that_transaction_synchronous(broker):
    with transaction.atomic():
        broker.enqueue(package("accepted"))
        assert synchronous_commit() == "on"
    assert OrmQ.objects.filter(key="test-broker").count() == 1


def test_a_task_is_claimed_and_taken_off_the_queue_in_a_statement_each_without_waiting_for_the_disk(broker):
    # A claim or an acknowledgement a crash loses runs the task again: idempotent, as every step is.
    broker.enqueue(package("accepted"))
    with CaptureQueriesContext(connection) as claimed:
        ((task_id, payload),) = broker.dequeue()
    with CaptureQueriesContext(connection) as acknowledged:
        broker.acknowledge(task_id)

    assert SignedPackage.loads(payload)["name"] == "accepted"
    for sent in (claimed, acknowledged):
        statements = [q["sql"] for q in sent.captured_queries if "django_q_ormq" in q["sql"]]
        assert len(statements) == 1 and "synchronous_commit" in statements[0], statements
    assert synchronous_commit() == "on"
    assert not OrmQ.objects.filter(key="test-broker").exists()


def test_an_enqueue_wakes_a_cluster_waiting_on_an_empty_queue(broker, monkeypatch):
    # The wait outlasts the test's patience: only the notification can end it in time.
    monkeypatch.setattr(broker_module, "WAIT_SECONDS", 120)
    broker._listen()  # from here on a notification is kept for the waiting dequeue
    woken = []

    def pusher():
        for _ in range(3):
            if tasks := broker.dequeue():
                woken.append(tasks)
                break
        connections.close_all()

    waiting = threading.Thread(target=pusher, daemon=True)
    waiting.start()
    waiting.join(0.5)
    other_process = PostgresOrmBroker(list_key="test-broker")
    other_process.enqueue(package("wake up"))
    waiting.join(60)

    assert not waiting.is_alive(), "the waiting dequeue was never woken by the enqueue"
    assert [SignedPackage.loads(payload)["name"] for _, payload in woken[0]] == ["wake up"]


def test_an_order_placed_while_the_broker_is_down_is_accepted_and_left_for_the_sweeper(
    api, make_product, monkeypatch, caplog
):
    from django_q.conf import Conf

    from orders.models import Order

    make_product("MUG-001", on_hand=5)
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "BROKER_CLASS", None)
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")  # nothing listens there

    response = api.post(
        "/api/orders/",
        {
            "email": "shopper@example.com",
            "lines": [{"sku": "MUG-001", "quantity": 1}],
            "payment_method": "pm_card_visa",
        },
        format="json",
    )

    assert response.status_code == 202, response.content
    assert Order.objects.get(reference=response.json()["reference"]).state == "VALIDATED"
    assert "the sweeper will nudge it" in caplog.text
