"""Two factors for staff who move money: an Order manager (who refunds) gets past the
password to the refund page only with a code from an authenticator app or a recovery code
(each good once); a stock clerk, who sets prices, needs one too; an auditor logs in with
the password alone."""

import base64
import io
import re

from django.core.management import call_command
from django.test import Client
from django_otp.oath import totp

from tests.support.admin_client import PASSWORD, make_account


def password_login(user) -> Client:
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def code_from_key(base32_key: str) -> str:
    """What an authenticator app that scanned the page's key shows now."""
    return f"{totp(base64.b32decode(base32_key)):06d}"


def test_an_order_manager_reaches_the_refund_page_only_after_enrolling_an_authenticator_app(
    staff_client, make_product, shopper
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    refund_page = f"/admin/orders/order/{order.pk}/refund/"
    mona = password_login(make_account("manager", "mona"))

    refused = mona.get(refund_page)
    enrolment = mona.get(refused["Location"])
    html = enrolment.content.decode()
    key = re.search(r'data-testid="key"[^>]*>([A-Z2-7]+)<', html).group(1)
    qr = mona.get("/admin/two-factor/qr.svg")
    enrolled = mona.post("/admin/two-factor/", {"token": code_from_key(key), "next": refund_page})

    assert refused.status_code == 302 and refused["Location"] == f"/admin/two-factor/?next={refund_page}"
    assert "Set up two-factor login" in html and qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content
    codes = re.findall(r"<li>([a-z0-9]{8})</li>", enrolled.content.decode())
    assert len(codes) == 10 and "not shown again" in enrolled.content.decode()
    assert mona.get(refund_page).status_code == 200
    assert mona.get("/admin/two-factor/qr.svg").status_code == 404  # the key is never shown again


def test_a_recovery_code_lets_a_manager_in_once(staff_client, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    refund_page = f"/admin/orders/order/{order.pk}/refund/"
    user = make_account("manager", "mona")
    first = password_login(user)
    key = re.search(r'data-testid="key"[^>]*>([A-Z2-7]+)<', first.get("/admin/two-factor/").content.decode()).group(1)
    page = first.post("/admin/two-factor/", {"token": code_from_key(key)}).content.decode()
    recovery = re.findall(r"<li>([a-z0-9]{8})</li>", page)[0]

    phone_lost = password_login(user)
    asked = phone_lost.get(refund_page)
    form = phone_lost.get(asked["Location"]).content.decode()
    let_in = phone_lost.post("/admin/two-factor/", {"token": recovery, "next": refund_page})
    again = password_login(user)
    refused = again.post("/admin/two-factor/", {"token": recovery, "next": refund_page})

    assert asked.status_code == 302 and "Type the six-digit code" in form
    assert let_in.status_code == 302 and let_in["Location"] == refund_page
    assert phone_lost.get(refund_page).status_code == 200
    assert refused.status_code == 200 and "was used already" in refused.content.decode()
    assert again.get(refund_page).status_code == 302


def test_a_wrong_code_is_refused_and_the_next_try_waits(staff_client):
    mona = password_login(make_account("manager", "mona"))
    key = re.search(r'data-testid="key"[^>]*>([A-Z2-7]+)<', mona.get("/admin/two-factor/").content.decode()).group(1)

    wrong = mona.post("/admin/two-factor/", {"token": "000000"})
    right_too_soon = mona.post("/admin/two-factor/", {"token": code_from_key(key)})

    assert "That code is not right" in wrong.content.decode()
    assert "That code is not right" in right_too_soon.content.decode()  # django-otp's throttle
    assert mona.get("/admin/").status_code == 302


def test_a_stock_clerk_who_sets_prices_needs_the_second_factor_and_an_auditor_does_not(staff_client, make_product):
    make_product("MUG-001", on_hand=5)
    clerk = password_login(make_account("clerk", "carla"))
    auditor = password_login(make_account("auditor", "ada"))

    refused = clerk.get("/admin/inventory/product/")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/two-factor/")
    assert auditor.get("/admin/inventory/product/").status_code == 200
    assert auditor.get("/admin/two-factor/").status_code == 302  # nothing to set up


def test_create_staff_prints_the_enrolment_link_for_a_role_that_moves_money(db, settings):
    settings.PUBLIC_BASE_URL = "https://shop.example"
    said = {}
    for role in ("manager", "clerk", "auditor"):
        out = io.StringIO()
        call_command("create_staff", f"new-{role}", "--role", role, "--email", f"{role}@shop.example", stdout=out)
        said[role] = out.getvalue()

    assert "https://shop.example/admin/two-factor/" in said["manager"] and "authenticator app" in said["manager"]
    assert "https://shop.example/admin/two-factor/" in said["clerk"]
    assert "two-factor" not in said["auditor"]
