"""Rate limits: order placement per address and per email, lookups, failure emails per
address, and the admin's login; counted in the shared cache (the database, or Redis)."""

import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core import mail
from django.core.cache import caches
from django.core.exceptions import ValidationError

from orders.models import Notification, Order
from tests.support.fake_stripe import deliver
from tests.support.settings_probe import in_fresh_process

RATES = {"order_placement_address": "5/min", "order_placement_email": "3/hour", "order_lookup": "10/min"}
DATABASE_CACHE = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}}


@pytest.fixture
def limited(settings):
    """The production kind of cache (the database's table) with low rates."""
    settings.CACHES = DATABASE_CACHE
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": RATES}
    caches["default"].clear()


def order_body(email="shopper@example.com", pay_with="pm_card_visa"):
    return {"email": email, "lines": [{"sku": "MUG-001", "quantity": 1}], "payment_method": pay_with}


def test_one_address_places_five_orders_a_minute_then_gets_429_with_retry_after(api, make_product, limited):
    make_product("MUG-001", on_hand=100)

    answers = [
        api.post("/api/orders/", order_body(email=f"s{i}@example.com"), format="json").status_code for i in range(8)
    ]

    assert answers == [202] * 5 + [429] * 3  # was 300 of 300 accepted
    refused = api.post("/api/orders/", order_body(email="later@example.com"), format="json")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Request was throttled" in refused.json()["detail"]
    assert Order.objects.count() == 5
    other = api.post("/api/orders/", order_body(email="o@example.com"), format="json", REMOTE_ADDR="10.1.1.1")
    assert other.status_code == 202


def test_one_email_gets_three_orders_an_hour_whatever_the_address_or_case(api, make_product, limited):
    make_product("MUG-001", on_hand=100)
    emails = ["victim@example.com", "VICTIM@example.com", " victim@example.com", "victim@EXAMPLE.com"]

    answers = [
        api.post("/api/orders/", order_body(email=e), format="json", REMOTE_ADDR=f"10.0.0.{i}").status_code
        for i, e in enumerate(emails)
    ]

    assert answers == [202, 202, 202, 429]
    assert int(api.post("/api/orders/", order_body("victim@example.com"), format="json")["Retry-After"]) > 60


def test_a_header_the_client_writes_does_not_give_it_a_new_address(api, make_product, limited):
    make_product("MUG-001", on_hand=100)

    answers = [
        api.post(
            "/api/orders/", order_body(email=f"s{i}@example.com"), format="json", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}"
        ).status_code
        for i in range(6)
    ]

    assert answers == [202] * 5 + [429]


def test_order_lookups_are_limited_per_address(api, make_product, limited):
    make_product("MUG-001", on_hand=100)
    reference = api.post("/api/orders/", order_body(), format="json").json()["reference"]

    answers = [api.get(f"/api/orders/{reference}/").status_code for _ in range(12)]

    assert answers == [200] * 10 + [429] * 2


def test_the_stripe_webhook_is_never_throttled(api, make_product, fake_stripe, limited):
    events = [
        {"id": f"evt_{i}", "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
        for i in range(15)
    ]

    answers = {deliver(api, event).status_code for event in events}

    assert answers == {200}


def test_the_limits_hold_on_redis_when_redis_url_is_set(api, make_product, settings):
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/7")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": RATES}
    caches["default"].clear()
    make_product("MUG-001", on_hand=100)

    answers = [
        api.post("/api/orders/", order_body(email=f"s{i}@example.com"), format="json").status_code for i in range(6)
    ]

    assert answers == [202] * 5 + [429]
    caches["default"].clear()


def test_the_shared_cache_is_the_database_by_default_and_redis_with_redis_url(tmp_path):
    code = "result = settings.CACHES['default']['BACKEND']"
    assert in_fresh_process(tmp_path, {}, code) == "django.core.cache.backends.db.DatabaseCache"
    with_redis = in_fresh_process(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6379/7"}, code)
    assert with_redis == "django.core.cache.backends.redis.RedisCache"


def test_failure_emails_to_one_address_are_capped_per_hour(api, make_product, settings):
    settings.FAILURE_EMAILS_PER_ADDRESS_PER_HOUR = 3
    make_product("MUG-001", on_hand=100)

    for i in range(10):
        response = api.post(
            "/api/orders/",
            order_body(email="victim@example.com", pay_with="pm_card_chargeDeclined"),
            format="json",
            REMOTE_ADDR=f"10.0.0.{i}",
        )
        assert response.status_code == 202

    assert len(mail.outbox) == 3  # was one per declined order: 300 in 67 s
    assert Notification.objects.filter(status="capped").count() == 7
    capped = Order.objects.filter(notifications__status="capped").first()
    assert capped.state == "PAYMENT_FAILED"
    assert "Not sent: 3 failure emails went to this address in the last hour." in [
        e.parameters.get("why") for e in capped.events.all()
    ]
    api.post("/api/orders/", order_body(email="other@example.com", pay_with="pm_card_chargeDeclined"), format="json")
    assert len(mail.outbox) == 4


def test_the_sweeper_does_not_retry_a_capped_failure_email(api, make_product, settings):
    from orders.sweeper import sweep_stuck_orders

    settings.FAILURE_EMAILS_PER_ADDRESS_PER_HOUR = 0
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    make_product("MUG-001", on_hand=10)
    api.post("/api/orders/", order_body(pay_with="pm_card_chargeDeclined"), format="json")

    assert sweep_stuck_orders() == 0
    assert len(mail.outbox) == 0


# --- the admin's login ------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


def test_the_admin_login_locks_a_name_at_an_address_out_after_five_wrong_passwords(client, transactional_db, settings):
    get_user_model().objects.create_superuser("boss", "boss@shop.example", PASSWORD)
    get_user_model().objects.create_superuser("colleague", "colleague@shop.example", PASSWORD)

    answers = [
        client.post("/admin/login/?next=/admin/", {"username": "boss", "password": f"guess{i}"}).status_code
        for i in range(6)
    ]
    right_one = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": PASSWORD})

    assert answers == [200] * 4 + [429] * 2  # the fifth failure locks; was 50 wrong, then in
    assert right_one.status_code == 429
    assert "_auth_user_id" not in client.session
    elsewhere = client.post(
        "/admin/login/?next=/admin/", {"username": "boss", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9"
    )
    assert elsewhere.status_code == 302  # the account itself is not locked for its owner
    client.logout()
    colleague = client.post("/admin/login/?next=/admin/", {"username": "colleague", "password": PASSWORD})
    assert colleague.status_code == 302  # nor is anyone else behind the same address


@pytest.mark.parametrize("password", ["password", "12345678", "123456789012", "shopadmin", "boss@shop.example1"])
def test_weak_passwords_are_refused(password, db):
    user = get_user_model()(username="boss", email="boss@shop.example")

    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_a_long_uncommon_password_is_accepted(db):
    validate_password(PASSWORD, get_user_model()(username="boss"))


def test_placement_goes_on_while_the_rate_limits_cache_is_unreachable(api, make_product, settings):
    make_product("MUG-001", on_hand=5)
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    body = {
        "email": "shopper@example.com",
        "lines": [{"sku": "MUG-001", "quantity": 1}],
        "payment_method": "pm_card_visa",
    }

    response = api.post("/api/orders/", body, format="json")

    assert response.status_code == 202, response.content
