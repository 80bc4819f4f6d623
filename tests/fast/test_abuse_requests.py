"""Hostile request bodies: deep JSON, huge bodies, and values that would forge log lines."""

import json
import logging

import pytest

from framework.log_sanitizing import OneLineFormatter
from orders.models import Order


def post_raw(api, body: bytes, **extra):
    return api.generic("POST", "/api/orders/", body, content_type="application/json", **extra)


def test_json_nested_944_levels_deep_is_a_400_not_a_500(api, transactional_db):
    body = ("[" * 944 + "]" * 944).encode()  # 1.9 KB

    response = post_raw(api, body)

    assert response.status_code == 400
    assert response.json() == {"body": ["Malformed JSON: JSON nested deeper than 20 levels."]}


def test_json_nested_past_pythons_own_recursion_limit_is_a_400_too(api, transactional_db):
    response = post_raw(api, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)

    assert response.status_code == 400


def test_an_order_nested_within_the_limit_is_read_as_before(api, make_product):
    make_product("MUG-001", on_hand=5)
    body = {"email": "s@example.com", "lines": [{"sku": "MUG-001", "quantity": 1}], "payment_method": "pm_card_visa"}

    assert post_raw(api, json.dumps(body).encode()).status_code == 202


def test_a_10_mb_body_is_answered_413_with_one_warning_and_no_traceback(api, transactional_db, caplog):
    body = b'{"email": "' + b"a" * (10 * 1024 * 1024) + b'"}'

    with caplog.at_level(logging.INFO):
        response = post_raw(api, body)

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 1048576 bytes."}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert Order.objects.count() == 0


def test_a_large_body_without_a_content_length_is_refused_413_while_it_is_read(api, transactional_db, caplog):
    body = b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}'

    with caplog.at_level(logging.INFO):
        response = post_raw(api, body, CONTENT_LENGTH="")  # as a chunked upload arrives

    assert response.status_code in (400, 413)  # nothing to read without a length, or the parser's 413
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("method", ["pm_card_visa\n2026-01-01 INFO orders all good", "pm_card\x1b[2Jvisa", "pm card"])
def test_a_payment_method_id_with_control_characters_or_spaces_is_refused(api, make_product, method):
    make_product("MUG-001", on_hand=5)
    body = {"email": "s@example.com", "lines": [{"sku": "MUG-001", "quantity": 1}], "payment_method": method}

    response = api.post("/api/orders/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"payment_method": ["A payment method id: letters, digits and underscores only."]}
    assert Order.objects.count() == 0


def test_a_logged_value_cannot_forge_a_log_line(caplog):
    record = logging.LogRecord(
        "orders", logging.WARNING, __file__, 1, "refused %s from %s", ("pm\n2026 INFO forged", "\x1b[31mx\u2028"), None
    )

    line = OneLineFormatter("%(levelname)s %(message)s").format(record)

    assert line == "WARNING refused pm\\n2026 INFO forged from \\x1b[31mx\\u2028"
    assert record.getMessage() == "refused pm\n2026 INFO forged from \x1b[31mx\u2028"  # other handlers see it whole


def test_the_configured_console_handler_writes_one_line_per_record(monkeypatch):
    import io

    [console] = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    stream = io.StringIO()
    monkeypatch.setattr(console, "stream", stream)

    logging.getLogger("orders.services").warning("order for %s", "a@example.com\nERROR payments forged")

    assert stream.getvalue().count("\n") == 1
    assert stream.getvalue().endswith("order for a@example.com\\nERROR payments forged\n")
