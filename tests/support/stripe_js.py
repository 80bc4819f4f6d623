"""Stripe.js for the shop page tests: a local stand-in served through Playwright's routes.

The page loads Stripe.js from https://js.stripe.com, which cannot be reached here; the
route serves tests/support/stripe_js_standin.js instead, at that address, so the page's
Content-Security-Policy decides whether it may run, as it would for Stripe's. Its 3-D Secure
challenge is a frame from https://hooks.stripe.com, as Stripe's is, served by the route too;
the page posts the shopper's answer to https://api.stripe.com/standin/authenticate, which
the route turns into what Stripe does: the fake Stripe server authenticates the intent (or
fails it), and the event Stripe would send is delivered, signed, to the shop's webhook.
"""

import json
from pathlib import Path

import requests

from tests.support.fake_stripe import WEBHOOK_SECRET, WEBHOOK_URL, FakeStripe, sign

STANDIN = Path(__file__).with_name("stripe_js_standin.js")
# Stripe's 3-D Secure test page as the stand-in frames it, from hooks.stripe.com: the
# shopper's choice goes to the shop page, which tells Stripe (api.stripe.com).
CHALLENGE_PAGE = """<!doctype html><html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>3D Secure 2 test page</title></head>
<body><h2>3D Secure 2 test page</h2><p>Complete or fail this test authentication.</p>
<button type="button" data-succeed="true">Complete authentication</button>
<button type="button" data-succeed="false">Fail authentication</button>
<script>
document.querySelectorAll("button").forEach(button => button.addEventListener("click", () =>
  parent.postMessage({ succeed: button.dataset.succeed === "true" }, "*")));
</script></body></html>"""
PUBLISHABLE_KEY = "pk_test_standin"


def bank_challenge(page):
    """The 3-D Secure test page inside the challenge's frame (its buttons are there)."""
    return page.frame_locator('iframe[title="3D Secure test payment page"]')


def route_stripe_js(page, fake: FakeStripe, shop_url: str) -> None:
    """Answer the page's requests to js.stripe.com with the stand-in, and to api.stripe.com
    with its authentication."""

    def handle(route, request):
        if request.method == "POST" and request.url.endswith("/standin/authenticate"):
            answer = json.loads(request.post_data or "{}")
            intent_id = answer["client_secret"].split("_secret_")[0]
            intent = fake.intents.get(intent_id)
            if intent is None or intent["client_secret"] != answer["client_secret"]:
                route.fulfill(status=400, content_type="application/json", body=json.dumps({"error": {}}))
                return
            event = fake.authenticate(intent_id, succeed=bool(answer["succeed"]))
            payload = json.dumps(event)
            delivered = requests.post(
                shop_url + WEBHOOK_URL,
                data=payload,
                headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload, WEBHOOK_SECRET)},
                timeout=30,
            )
            assert delivered.status_code == 200, delivered.text
            route.fulfill(
                status=200,
                content_type="application/json",
                headers={"Access-Control-Allow-Origin": "*"},
                body=json.dumps(fake.intents[intent_id]),
            )
            return
        if request.url.startswith("https://hooks.stripe.com/"):
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=CHALLENGE_PAGE)
            return
        route.fulfill(status=200, content_type="application/javascript", body=STANDIN.read_text())

    page.route("https://js.stripe.com/**", handle)
    page.route("https://hooks.stripe.com/standin/**", handle)
    page.route("https://api.stripe.com/standin/authenticate", handle)
