"""Logs: one JSON object per line under LOG_FORMAT=json, each carrying the request id (from
the API request into the tasks it queued), the order's reference, the step and its attempt."""

import io
import json
import logging

import pytest
from django.conf import settings

from framework import log_context
from tests.support.ordering import place
from tests.support.settings_probe import in_fresh_process, manage_in_fresh_process


@pytest.fixture
def json_lines():
    """The root logger also writes through the shop's JSON formatter into a buffer; returns
    a function giving the records written so far, each parsed from its own line."""
    options = dict(settings.LOGGING["formatters"]["json"])
    factory = options.pop("()")
    module, name = factory.rsplit(".", 1)
    formatter = getattr(__import__(module, fromlist=[name]), name)(**options)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    handler.addFilter(log_context.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)

    def lines() -> list[dict]:
        text = buffer.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    yield lines
    root.removeHandler(handler)


def test_each_record_is_one_json_line_with_the_request_the_order_the_step_and_the_attempt(
    api, make_product, json_lines
):
    make_product("MUG-001", on_hand=5)

    response = place(api, headers={"X-Request-ID": "req-7f3a"})

    assert response["X-Request-ID"] == "req-7f3a"
    reference = response.json()["reference"]
    moves = {line["message"].split(" (")[0]: line for line in json_lines() if line["message"].startswith("order ")}
    validated = moves[f"order {reference} PENDING -> VALIDATED"]
    assert validated["level"] == "INFO"
    assert validated["logger"] == "orders.transitions"
    assert {k: validated[k] for k in ("request_id", "order", "step", "attempt")} == {
        "request_id": "req-7f3a",
        "order": reference,
        "step": "validate_order",
        "attempt": "1",
    }
    assert validated["time"].endswith("+00:00")
    # The tasks the request queued ran inline here: they carry its id, and their own steps.
    paid = moves[f"order {reference} VALIDATED -> PAID"]
    assert (paid["request_id"], paid["order"], paid["step"]) == ("req-7f3a", reference, "process_payment")
    completed = moves[f"order {reference} CONFIRMED -> COMPLETED"]
    assert (completed["request_id"], completed["step"]) == ("req-7f3a", "send_notification")


def test_a_request_without_an_id_or_with_an_unfit_one_gets_a_fresh_id(api, make_product, json_lines):
    make_product("MUG-001", on_hand=5)

    plain = place(api)
    forged = place(api, headers={"X-Request-ID": "x\nlevel=ERROR forged"})

    for response in (plain, forged):
        assert len(response["X-Request-ID"]) == 32
    assert plain["X-Request-ID"] != forged["X-Request-ID"]
    assert {line["request_id"] for line in json_lines() if line["order"] == forged.json()["reference"]} == {
        forged["X-Request-ID"]
    }


def test_an_order_that_ends_failed_is_logged_as_an_error(api, make_product, json_lines):
    make_product("MUG-001", on_hand=5)

    reference = place(api, pay_with="pm_sim_unavailable").json()["reference"]

    [failed] = [line for line in json_lines() if line["message"].startswith(f"order {reference} VALIDATED -> FAILED")]
    assert failed["level"] == "ERROR"
    assert (failed["order"], failed["step"]) == (reference, "process_payment")
    declined = place(api, pay_with="pm_card_chargeDeclined").json()["reference"]
    [payment_failed] = [line for line in json_lines() if f"{declined} VALIDATED -> PAYMENT_FAILED" in line["message"]]
    assert payment_failed["level"] == "INFO"  # the shopper's card, not the shop's fault


def test_control_characters_in_a_logged_value_cannot_forge_a_line(json_lines):
    logging.getLogger("tests").warning("shopper wrote %s", 'hi\n{"level": "ERROR", "message": "forged"}\r\x1b[2J')

    [line] = [line for line in json_lines() if line["logger"] == "tests"]
    assert line["message"] == 'shopper wrote hi\n{"level": "ERROR", "message": "forged"}\r\x1b[2J'
    assert line["level"] == "WARNING"


def test_a_task_queued_by_a_request_runs_with_its_request_id_in_the_worker(
    api, make_product, held_pipeline, json_lines
):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage
    from django_q.tasks import _sync

    make_product("MUG-001", on_hand=5)
    reference = place(api, headers={"X-Request-ID": "req-queued"}).json()["reference"]
    [message] = OrmQ.objects.all()
    assert message.task["log_context"] == {"request_id": "req-queued"}

    log_context.restore({})  # a worker process knows nothing of the request
    _sync(SignedPackage.dumps({**message.task, "sync": True}))  # django-q2's own run of one package, in process

    paid = [line for line in json_lines() if line["message"].startswith(f"order {reference} VALIDATED -> PAID")]
    assert [(line["request_id"], line["step"], line["attempt"]) for line in paid] == [
        ("req-queued", "process_payment", "1")
    ]
    assert log_context.current()["request_id"] == ""  # put back as it was once the task ran


def test_log_format_picks_json_or_plain_lines_from_the_environment(tmp_path):
    code = 'result = settings.LOGGING["handlers"]["console"]["formatter"]'
    assert in_fresh_process(tmp_path, {"LOG_FORMAT": "json"}, code) == "json"
    assert in_fresh_process(tmp_path, {"LOG_FORMAT": ""}, code) == "plain"


# What Django's request handling logs for a refusal and a missing page, the way it logs them.
REFUSAL_AND_NOT_FOUND = """
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseForbidden, HttpResponseNotFound
from django.test import RequestFactory
from django.utils.log import log_response

request = RequestFactory().get("/admin/orders/order/")
try:
    raise PermissionDenied("You need the permission 'orders.view_order'.")
except PermissionDenied as refusal:
    log_response("Forbidden (Permission denied): %s", request.path, response=HttpResponseForbidden(),
                 request=request, exception=refusal)
missing = RequestFactory().get("/no-such-page")
log_response("Not Found: %s", missing.path, response=HttpResponseNotFound(), request=missing)
"""


def test_a_refusal_and_a_missing_page_are_one_line_each_without_a_traceback(tmp_path):
    # DJANGO_DEBUG left at its default (on), as `make run` starts: Django's own console
    # handler, which writes only while DEBUG is on, printed every django.* line a second time.
    done = manage_in_fresh_process(tmp_path, {"LOG_FORMAT": "plain"}, "shell", "-c", REFUSAL_AND_NOT_FOUND)

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "django.request" in line or "Traceback" in line]
    assert len(lines) == 2, done.stderr
    assert "WARNING django.request Forbidden (Permission denied): /admin/orders/order/" in lines[0]
    assert "WARNING django.request Not Found: /no-such-page" in lines[1]
    assert "Traceback" not in done.stderr


def test_the_favicon_is_served_and_linked_from_the_admin_and_the_shop_page(client, db):
    icon = client.get("/favicon.ico")
    login_page = client.get("/admin/login/").content.decode()

    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(icon)
    assert '<link rel="icon" href="/favicon.ico">' in login_page
    assert '<link rel="icon" href="/favicon.ico" />' in (settings.BASE_DIR / "frontend" / "index.html").read_text()
