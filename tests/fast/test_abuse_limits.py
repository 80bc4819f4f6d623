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
from tests.support.ordering import order_body, place
from tests.support.settings_probe import in_fresh_process

RATES = {"order_placement_address": "5/min", "order_placement_email": "3/hour", "order_lookup": "10/min"}
DATABASE_CACHE = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}}


@pytest.fixture
def limited(settings):
    """The production kind of cache (the database's table) with low rates."""
    settings.CACHES = DATABASE_CACHE
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": RATES}
    caches["default"].clear()


def test_one_address_places_five_orders_a_minute_then_gets_429_with_retry_after(api, make_product, limited):
    make_product("MUG-001", on_hand=100)

    answers = [place(api, email=f"s{i}@example.com").status_code for i in range(8)]

    assert answers == [202] * 5 + [429] * 3  # was 300 of 300 accepted
    refused = place(api, email="later@example.com")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Request was throttled" in refused.json()["detail"]
    assert Order.objects.count() == 5
    other = place(api, email="o@example.com", address="10.1.1.1")
    assert other.status_code == 202


def test_one_email_gets_three_orders_an_hour_whatever_the_address_or_case(api, make_product, limited):
    make_product("MUG-001", on_hand=100)
    emails = ["victim@example.com", "VICTIM@example.com", " victim@example.com", "victim@EXAMPLE.com"]

    answers = [place(api, email=e, address=f"10.0.0.{i}").status_code for i, e in enumerate(emails)]

    assert answers == [202, 202, 202, 429]
    assert int(place(api, email="victim@example.com")["Retry-After"]) > 60


def test_a_header_the_client_writes_does_not_give_it_a_new_address(api, make_product, limited):
    make_product("MUG-001", on_hand=100)

    answers = [
        place(api, email=f"s{i}@example.com", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(6)
    ]

    assert answers == [202] * 5 + [429]


def test_order_lookups_are_limited_per_address(api, make_product, limited):
    make_product("MUG-001", on_hand=100)
    reference = place(api).json()["reference"]

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
    settings.CACHES = {"default": {"BACKEND": "framework.redis_cache.SharedClientRedisCache", "LOCATION": url}}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": RATES}
    caches["default"].clear()
    make_product("MUG-001", on_hand=100)

    answers = [place(api, email=f"s{i}@example.com").status_code for i in range(6)]

    assert answers == [202] * 5 + [429]
    caches["default"].clear()


def test_the_shared_cache_is_the_database_by_default_and_redis_with_redis_url(tmp_path):
    code = "result = settings.CACHES['default']['BACKEND']"
    assert in_fresh_process(tmp_path, {}, code) == "django.core.cache.backends.db.DatabaseCache"
    with_redis = in_fresh_process(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6379/7"}, code)
    assert with_redis == "framework.redis_cache.SharedClientRedisCache"


def test_failure_emails_to_one_address_are_capped_per_hour(api, make_product, settings):
    settings.FAILURE_EMAILS_PER_ADDRESS_PER_HOUR = 3
    make_product("MUG-001", on_hand=100)

    for i in range(10):
        response = place(api, email="victim@example.com", pay_with="pm_card_chargeDeclined", address=f"10.0.0.{i}")
        assert response.status_code == 202

    assert len(mail.outbox) == 3  # was one per declined order: 300 in 67 s
    assert Notification.objects.filter(status="capped").count() == 7
    capped = Order.objects.filter(notifications__status="capped").first()
    assert capped.state == "PAYMENT_FAILED"
    assert "Not sent: 3 failure emails went to this address in the last hour." in [
        e.parameters.get("why") for e in capped.events.all()
    ]
    place(api, email="other@example.com", pay_with="pm_card_chargeDeclined")
    assert len(mail.outbox) == 4


def test_the_sweeper_does_not_retry_a_capped_failure_email(api, make_product, settings):
    from orders.sweeper import sweep_stuck_orders

    settings.FAILURE_EMAILS_PER_ADDRESS_PER_HOUR = 0
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    make_product("MUG-001", on_hand=10)
    place(api, pay_with="pm_card_chargeDeclined")

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


# --- only what passed is counted -------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """The throttles' clock, moved by the test instead of waited for."""
    from framework.throttling import RateThrottle

    class Clock:
        now = 1_800_000_000.0  # 20 s into a minute, 20 s into an hour

        def advance(self, seconds: float) -> None:
            self.now += seconds

    moved = Clock()
    monkeypatch.setattr(RateThrottle, "timer", lambda self: moved.now)
    return moved


def test_orders_refused_by_the_address_limit_do_not_use_up_an_emails_hourly_quota(api, make_product, settings, clock):
    settings.CACHES = DATABASE_CACHE
    rates = {**RATES, "order_placement_address": "20/min", "order_placement_email": "10/hour"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    caches["default"].clear()
    make_product("MUG-001", on_hand=100)
    post = lambda email: api.post("/api/orders/", order_body(email=email), format="json")  # noqa: E731

    placed = [post(f"colleague{i}@example.com").status_code for i in range(20)]
    refused = [post("quota@example.com").status_code for _ in range(10)]
    clock.advance(65)
    later = post("quota@example.com")

    assert placed == [202] * 20
    assert refused == [429] * 10
    assert later.status_code == 202, later.json()  # was 429 with Retry-After: 3535
    assert Order.objects.filter(email="quota@example.com").count() == 1


def test_a_retry_with_the_same_idempotency_key_is_answered_with_its_order_past_the_limit(api, make_product, limited):
    make_product("MUG-001", on_hand=100)
    first = api.post("/api/orders/", order_body(), format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    for i in range(4):
        api.post("/api/orders/", order_body(email=f"s{i}@example.com"), format="json")
    assert api.post("/api/orders/", order_body(email="new@example.com"), format="json").status_code == 429

    retry = api.post("/api/orders/", order_body(), format="json", HTTP_IDEMPOTENCY_KEY="retry-1")

    assert retry.status_code == 202, retry.json()  # was 429
    assert retry.json()["reference"] == first.json()["reference"]
    assert retry["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 5


def test_requests_refused_by_validation_or_replayed_do_not_use_up_the_quota(api, make_product, limited):
    make_product("MUG-001", on_hand=100)
    bad = {"email": "not an email", "lines": [{"sku": "MUG-001", "quantity": 1}], "payment_method": "pm_card_visa"}
    first = api.post("/api/orders/", order_body(email="s0@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="k-0")

    refused = [api.post("/api/orders/", bad, format="json").status_code for _ in range(6)]
    replays = [
        api.post("/api/orders/", order_body(email="s0@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="k-0")
        for _ in range(6)
    ]
    others = [
        api.post("/api/orders/", order_body(email=f"s{i}@example.com"), format="json").status_code for i in range(1, 6)
    ]

    assert first.status_code == 202
    assert refused == [400] * 6
    assert {r.json()["reference"] for r in replays} == {first.json()["reference"]}
    assert others == [202] * 4 + [429]  # five orders a minute: the first and four more
