"""A local HTTP server that speaks the part of Stripe's API the adapter uses.

The real `stripe` SDK talks to it over a real connection: form-encoded requests with
bracketed keys, Bearer authentication, the response shapes of PaymentIntent, Charge,
Refund, Event and error objects, idempotent replays (the same key and parameters give the
first answer again with `Idempotent-Replayed: true`; the same key with other parameters is
a 400 `idempotency_error`), and Stripe's test payment methods:

- `pm_card_visa`, `pm_card_mastercard`, ... authorise;
- `pm_card_chargeDeclined` and its variants decline with a 402 `card_error` and Stripe's
  decline codes, the intent left `requires_payment_method`;
- `pm_card_authenticationRequired`, `pm_card_threeDSecure2Required` need 3-D Secure:
  the intent is `requires_action` until a test calls `authenticate()`.

Faults are injected per operation: `fail_next("create_intent", status=500)` answers an
error without doing anything; `hang_next("create_intent")` does the work and then does
not answer within the client's timeout (the answer is lost, the charge is not).

Every state change is recorded as an event of the shape Stripe sends to webhooks;
`sign()` signs a payload as Stripe does (HMAC-SHA256 of "timestamp.payload").
"""

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

# Stripe's test cards: one table serves both stand-ins for Stripe.
from payments.gateways.simulated import CARD_BRANDS

API_VERSION = "2025-09-30.clover"
WEBHOOK_SECRET = "whsec_test_secret"
WEBHOOK_URL = "/api/payments/stripe/webhook"

DECLINES = {  # payment method: (code, decline_code, message)
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card", "Your card has expired."),
    "pm_card_chargeDeclinedIncorrectCvc": ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "pm_card_chargeDeclinedFraudulent": ("card_declined", "fraudulent", "Your card was declined."),
    "pm_card_chargeDeclinedProcessingError": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}
NEEDS_AUTHENTICATION = {
    "pm_card_authenticationRequired",
    "pm_card_threeDSecure2Required",
    "pm_card_threeDSecureRequired",
}
CANCELABLE = {"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"}

ROUTES = [
    ("POST", re.compile(r"^/v1/payment_intents$"), "create_intent"),
    ("GET", re.compile(r"^/v1/payment_intents$"), "list_intents"),
    ("GET", re.compile(r"^/v1/payment_intents/search$"), "search_intents"),
    ("GET", re.compile(r"^/v1/payment_intents/(?P<id>pi_[A-Za-z0-9]+)$"), "retrieve_intent"),
    ("POST", re.compile(r"^/v1/payment_intents/(?P<id>pi_[A-Za-z0-9]+)/capture$"), "capture_intent"),
    ("POST", re.compile(r"^/v1/payment_intents/(?P<id>pi_[A-Za-z0-9]+)/cancel$"), "cancel_intent"),
    ("POST", re.compile(r"^/v1/refunds$"), "create_refund"),
]


def sign(payload: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe would send with this payload."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    body = payload.decode() if isinstance(payload, bytes) else payload
    signature = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def deliver(client, event: dict | str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None, signature=None):
    """POST an event to the shop's webhook endpoint the way Stripe does: raw JSON, signed."""
    payload = event if isinstance(event, str) else json.dumps(event)
    header = sign(payload, secret, timestamp=timestamp) if signature is None else signature
    return client.generic("POST", WEBHOOK_URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def assert_no_charge_without_order(fake: "FakeStripe") -> None:
    """DESIGN.md's second invariant, read from both books: one intent per order at most; an order
    that ended without money keeps neither a hold nor a net charge; a confirmed order has its
    total captured, less exactly the refunds the shop recorded."""
    from orders.models import Order
    from payments.money import to_minor_units

    for order in Order.objects.select_related("payment"):
        intents = fake.intents_for(order.reference)
        assert len(intents) <= 1, f"{order.reference} has {len(intents)} payment intents"
        if not intents:
            continue
        intent = intents[0]
        charge = fake.charge_of(intent["id"]) or {}
        kept = charge.get("amount_captured", 0) - charge.get("amount_refunded", 0) if charge.get("captured") else 0
        if order.state in ("REJECTED", "PAYMENT_FAILED", "FAILED", "CANCELLED"):
            assert intent["status"] not in ("requires_capture", "requires_action"), (order.reference, intent["status"])
            assert kept == 0, f"{order.reference} is {order.state} but keeps {kept} at Stripe"
        elif order.state in ("CONFIRMED", "COMPLETED"):
            assert intent["status"] == "succeeded", (order.reference, intent["status"])
            assert charge["amount_captured"] == to_minor_units(order.total, order.currency)
            assert charge["amount_refunded"] == to_minor_units(order.payment.amount_refunded, order.currency)


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's bracketed form keys (`metadata[order]`, `expand[0]`) as nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(node):
        if isinstance(node, dict):
            node = {k: listify(v) for k, v in node.items()}
            if node and all(k.isdigit() for k in node):
                return [node[k] for k in sorted(node, key=int)]
        return node

    return listify(root)


class StripeFailure(Exception):
    """An error answer: HTTP status and Stripe's error object."""

    def __init__(self, status: int, error: dict):
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


@dataclass
class Call:
    operation: str
    method: str
    path: str
    params: dict
    idempotency_key: str
    status: int = 0
    replayed: bool = False


@dataclass
class Fault:
    operation: str
    status: int = 0  # an error answer, nothing done
    hang: bool = False  # the work done, the answer never arriving in time
    times: int = 1


@dataclass
class FakeStripe:
    api_key: str = "sk_test_fake_" + "0" * 8
    hang_seconds: float = 5.0
    intents: dict = field(default_factory=dict)
    charges: dict = field(default_factory=dict)
    refunds: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    faults: list = field(default_factory=list)
    on_call: dict = field(default_factory=dict)  # operation -> callback(params), run before the work
    check_books: bool = True  # the fixture checks no charge is without an order afterwards
    hold_seconds: int = 7 * 24 * 3600  # an authorisation's capture_before, from its charge's creation

    def __post_init__(self):
        self._lock = threading.RLock()
        self._idempotency: dict[str, tuple[str, int, dict]] = {}
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeStripe":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    # --- what tests use -------------------------------------------------------------------

    def fail_next(self, operation: str, *, status: int, times: int = 1) -> None:
        self.faults.append(Fault(operation, status=status, times=times))

    def hang_next(self, operation: str, *, times: int = 1) -> None:
        self.faults.append(Fault(operation, hang=True, times=times))

    def calls_of(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    def intents_for(self, order_reference: str) -> list[dict]:
        return [i for i in self.intents.values() if i["metadata"].get("order_reference") == order_reference]

    def charge_of(self, intent_id: str) -> dict | None:
        charge_id = self.intents[intent_id]["latest_charge"]
        return self.charges.get(charge_id) if charge_id else None

    def event(self, type_: str, object_id: str | None = None) -> dict:
        """The last event of this type (about this object), as Stripe would deliver it."""
        found = [e for e in self.events if e["type"] == type_ and object_id in (None, e["data"]["object"]["id"])]
        if not found:
            raise LookupError(f"no {type_} event for {object_id}")
        return found[-1]

    def authenticate(self, intent_id: str, *, succeed: bool = True) -> dict:
        """The shopper completes (or fails) 3-D Secure on their page; returns the event Stripe sends."""
        with self._lock:
            intent = self.intents[intent_id]
            assert intent["status"] == "requires_action", intent["status"]
            intent["next_action"] = None
            if succeed:
                self._authorize(intent)
                return self.event(_event_type_after_authorisation(intent), intent_id)
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "invalid_request_error",
                "code": "payment_intent_authentication_failure",
                "message": "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
                "or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
                "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
            }
            return self._emit("payment_intent.payment_failed", intent)

    def dispute(self, intent_id: str, *, reason: str = "fraudulent") -> dict:
        """The shopper's bank disputes the charge; returns the event Stripe sends."""
        with self._lock:
            intent = self.intents[intent_id]
            charge = self.charges[intent["latest_charge"]]
            charge["disputed"] = True
            dispute = {
                "id": _id("dp"),
                "object": "dispute",
                "amount": charge["amount_captured"],
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": intent_id,
                "reason": reason,
                "status": "needs_response",
                "created": int(time.time()),
                "evidence_details": {
                    "due_by": int(time.time()) + 7 * 86400,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
            }
            return self._emit("charge.dispute.created", dispute)

    def confirm_on_page(self, intent_id: str, payment_method: str) -> dict:
        """The shopper's page confirms the intent again with another card (Stripe.js); returns the event."""
        with self._lock:
            intent = self.intents[intent_id]
            assert intent["status"] == "requires_payment_method", intent["status"]
            intent.update(payment_method=payment_method, last_payment_error=None)
            self._authorize(intent)
            return self.event(_event_type_after_authorisation(intent), intent_id)

    def refund_in_dashboard(self, intent_id: str, amount: int, *, reason: str | None = None) -> dict:
        """Refund `amount` (minor units) as a person in Stripe's dashboard does; returns the charge.refunded event."""
        with self._lock:
            params = {"payment_intent": intent_id, "amount": amount, **({"reason": reason} if reason else {})}
            self._create_refund(params)
            return self.events[-1]

    def capture_in_dashboard(self, intent_id: str) -> None:
        """Someone captures the intent outside the shop (Stripe's dashboard)."""
        with self._lock:
            self._capture(self.intents[intent_id], {})

    # --- the API --------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict, dict]:
        """One request: (status, response body, extra headers)."""
        url = urlsplit(path)
        pairs = parse_qsl(url.query if method == "GET" else body.decode(), keep_blank_values=True)
        params = decode_form(pairs)
        operation, ids = _route(method, url.path)
        key = headers.get("Idempotency-Key", "") if method == "POST" else ""
        call = Call(operation, method, url.path, params, key)
        self.calls.append(call)
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._answer(
                call, 401, {"error": _error("invalid_request_error", "Invalid API Key provided: sk_test_****")}
            )
        fault = self._take_fault(operation)
        if fault and fault.status:
            return self._answer(call, fault.status, {"error": _fault_error(fault.status)})
        if callback := self.on_call.get(operation):
            callback(params)
        with self._lock:
            fingerprint = json.dumps([method, url.path, params], sort_keys=True)
            if key and key in self._idempotency:
                first_fingerprint, status, response = self._idempotency[key]
                if first_fingerprint != fingerprint:
                    return self._answer(
                        call,
                        400,
                        {
                            "error": _error(
                                "idempotency_error",
                                "Keys for idempotent requests can only be used with the same parameters they were "
                                f"first used with. Try using a key other than '{key}' if you meant to execute a "
                                "different request.",
                            )
                        },
                    )
                call.replayed = True
                status_, body_, extra = self._answer(call, status, response)
                return status_, body_, {**extra, "Idempotent-Replayed": "true"}
            try:
                status, response = 200, getattr(self, "_" + operation)(params, **ids)
            except StripeFailure as failure:
                status, response = failure.status, {"error": failure.error}
            if key:
                self._idempotency[key] = (fingerprint, status, json.loads(json.dumps(response)))
        if fault and fault.hang:
            self._released.wait(self.hang_seconds)
        return self._answer(call, status, response)

    def _answer(self, call: Call, status: int, response: dict) -> tuple[int, dict, dict]:
        call.status = status
        return status, response, {"Request-Id": _id("req")}

    def _take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.operation == operation and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _create_intent(self, params: dict) -> dict:
        amount = _positive_int(params.get("amount"), "amount")
        currency = str(params.get("currency", "")).lower()
        if not currency:
            raise StripeFailure(400, _error("invalid_request_error", "Missing required param: currency.", "currency"))
        if "payment_method_types" in params:
            # Writable no more from API version 2026-09-30.endive on, which the SDK pins.
            raise StripeFailure(
                400,
                _error(
                    "invalid_request_error",
                    "payment_method_types is no longer supported: use allowed_payment_method_types.",
                    "payment_method_types",
                    "payment_method_types_no_longer_supported",
                ),
            )
        intent = {
            "id": _id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "capture_method": params.get("capture_method", "automatic_async"),
            "client_secret": None,
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency,
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "next_action": None,
            "payment_method": params.get("payment_method"),
            "payment_method_types": params.get("allowed_payment_method_types", ["card"]),
            "status": "requires_payment_method" if not params.get("payment_method") else "requires_confirmation",
            "canceled_at": None,
            "cancellation_reason": None,
        }
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_urlsafe(18)}"
        if params.get("confirm") == "true":
            if "allowed_payment_method_types" not in params and "return_url" not in params:
                raise StripeFailure(
                    400,
                    _error(
                        "invalid_request_error",
                        "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. "
                        "Because some of these payment methods might redirect your customer off of your page, "
                        "you must provide a `return_url`.",
                    ),
                )
            self.intents[intent["id"]] = intent
            self._confirm(intent)
        else:
            self.intents[intent["id"]] = intent
        return self._view(intent, params)

    def _confirm(self, intent: dict) -> None:
        method = intent["payment_method"] or ""
        if method in DECLINES:
            code, decline_code, message = DECLINES[method]
            charge = self._new_charge(intent, status="failed")
            charge.update(failure_code=code, failure_message=message, paid=False)
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": message,
                "charge": charge["id"],
                "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            }
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {**error, "payment_method": {"id": method, "object": "payment_method"}}
            self._emit("payment_intent.payment_failed", intent)
            raise StripeFailure(402, {**error, "payment_intent": json.loads(json.dumps(intent))})
        if method in NEEDS_AUTHENTICATION:
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": "https://hooks.stripe.com/3d"},
            }
            self._emit("payment_intent.requires_action", intent)
            return
        if method.removeprefix("pm_card_") not in CARD_BRANDS:
            raise StripeFailure(
                400,
                _error(
                    "invalid_request_error", f"No such PaymentMethod: '{method}'", "payment_method", "resource_missing"
                ),
            )
        self._authorize(intent)

    def _authorize(self, intent: dict) -> None:
        """The bank said yes: a hold for manual capture, or the money taken at once."""
        self._new_charge(intent, status="succeeded")
        if intent["capture_method"] == "manual":
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
            self._emit("payment_intent.amount_capturable_updated", intent)
        else:
            self._capture(intent, {})

    def _new_charge(self, intent: dict, *, status: str) -> dict:
        brand, last4 = CARD_BRANDS.get((intent["payment_method"] or "").removeprefix("pm_card_"), ("visa", "0002"))
        charge = {
            "id": _id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "currency": intent["currency"],
            "disputed": False,
            "paid": status == "succeeded",
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "payment_method_details": {
                "type": "card",
                "card": {
                    "brand": brand,
                    "last4": last4,
                    "exp_month": 12,
                    "exp_year": 2034,
                    "funding": "credit",
                    # Until when the hold may be captured (Stripe: about 7 days for online card payments).
                    "capture_before": int(time.time()) + self.hold_seconds,
                },
            },
            "refunded": False,
            "status": status,
            "metadata": intent["metadata"],
            "created": int(time.time()),
            "livemode": False,
            "failure_code": None,
            "failure_message": None,
        }
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        return charge

    def _retrieve_intent(self, params: dict, id: str) -> dict:
        return self._view(self._intent(id), params)

    def _list_intents(self, params: dict) -> dict:
        limit = int(params.get("limit", 10))
        newest_first = sorted(self.intents.values(), key=lambda i: i["created"], reverse=True)
        return {
            "object": "list",
            "data": [self._view(i, params) for i in newest_first[:limit]],
            "has_more": len(newest_first) > limit,
            "url": "/v1/payment_intents",
        }

    def _search_intents(self, params: dict) -> dict:
        match = re.fullmatch(r"metadata\['([^']+)'\]:'([^']*)'", params.get("query", ""))
        if not match:
            raise StripeFailure(400, _error("invalid_request_error", "Invalid search query.", "query"))
        name, value = match.groups()
        found = [i for i in self.intents.values() if i["metadata"].get(name) == value]
        return {
            "object": "search_result",
            "data": [self._view(i, params) for i in found],
            "has_more": False,
            "next_page": None,
            "url": "/v1/payment_intents/search",
        }

    def _capture_intent(self, params: dict, id: str) -> dict:
        intent = self._intent(id)
        if intent["status"] != "requires_capture":
            raise StripeFailure(
                400,
                _error(
                    "invalid_request_error",
                    f"This PaymentIntent could not be captured because it has a status of {intent['status']}. "
                    "Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                    code="payment_intent_unexpected_state",
                ),
            )
        self._capture(intent, params)
        return self._view(intent, params)

    def _capture(self, intent: dict, params: dict) -> None:
        amount = int(params.get("amount_to_capture", intent["amount"]))
        if amount > intent["amount"]:
            raise StripeFailure(
                400,
                _error(
                    "invalid_request_error",
                    "The amount to capture must be less than or equal to the amount capturable.",
                    "amount_to_capture",
                    "amount_too_large",
                ),
            )
        charge = self.charges[intent["latest_charge"]]
        charge.update(captured=True, amount_captured=amount)
        intent.update(status="succeeded", amount_capturable=0, amount_received=amount)
        self._emit("payment_intent.succeeded", intent)

    def _cancel_intent(self, params: dict, id: str) -> dict:
        intent = self._intent(id)
        if intent["status"] not in CANCELABLE:
            raise StripeFailure(
                400,
                _error(
                    "invalid_request_error",
                    f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. "
                    "Only a PaymentIntent with one of the following statuses may be canceled: "
                    + ", ".join(sorted(CANCELABLE))
                    + ".",
                    code="payment_intent_unexpected_state",
                ),
            )
        if intent["status"] == "requires_capture":
            # Stripe releases an uncaptured hold by refunding the uncaptured charge.
            charge = self.charges[intent["latest_charge"]]
            charge.update(refunded=True, amount_refunded=charge["amount"])
        intent.update(
            status="canceled",
            amount_capturable=0,
            canceled_at=int(time.time()),
            cancellation_reason=params.get("cancellation_reason"),
            next_action=None,
        )
        self._emit("payment_intent.canceled", intent)
        return self._view(intent, params)

    def _create_refund(self, params: dict) -> dict:
        if "payment_intent" in params:
            intent = self._intent(params["payment_intent"])
            charge = self.charges.get(intent["latest_charge"] or "")
        else:
            charge = self.charges.get(params.get("charge", ""))
        if charge is None:
            raise StripeFailure(404, _error("invalid_request_error", "No such charge.", "charge", "resource_missing"))
        if not charge["captured"]:
            raise StripeFailure(
                400,
                _error(
                    "invalid_request_error",
                    f"This PaymentIntent ({charge['payment_intent']}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                ),
            )
        left = charge["amount_captured"] - charge["amount_refunded"]
        if left <= 0:
            raise StripeFailure(
                400,
                _error(
                    "invalid_request_error",
                    f"Charge {charge['id']} has already been refunded.",
                    code="charge_already_refunded",
                ),
            )
        amount = _positive_int(params.get("amount", left), "amount")
        if amount > left:
            raise StripeFailure(
                400,
                _error(
                    "invalid_request_error",
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                    "amount",
                    "amount_too_large",
                ),
            )
        refund = {
            "id": _id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "created": int(time.time()),
            "metadata": params.get("metadata", {}),
            "payment_intent": charge["payment_intent"],
            "reason": params.get("reason"),
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        # Listed on the charge newest first, as API versions before 2022-11-15 list them in events.
        charge.setdefault("refunds", {"object": "list", "data": []})["data"].insert(0, dict(refund))
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        self._emit("charge.refunded", charge)
        return refund

    def _intent(self, id: str) -> dict:
        if id not in self.intents:
            raise StripeFailure(
                404,
                _error("invalid_request_error", f"No such payment_intent: '{id}'", "intent", "resource_missing"),
            )
        return self.intents[id]

    def _view(self, intent: dict, params: dict) -> dict:
        view = json.loads(json.dumps(intent))
        if "latest_charge" in params.get("expand", []) and intent["latest_charge"]:
            view["latest_charge"] = json.loads(json.dumps(self.charges[intent["latest_charge"]]))
        return view

    def _emit(self, type_: str, obj: dict) -> dict:
        event = {
            "id": _id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.events.append(event)
        return event


def _event_type_after_authorisation(intent: dict) -> str:
    return (
        "payment_intent.amount_capturable_updated"
        if intent["status"] == "requires_capture"
        else ("payment_intent.succeeded")
    )


def _route(method: str, path: str) -> tuple[str, dict]:
    for route_method, pattern, operation in ROUTES:
        if method == route_method and (match := pattern.match(path)):
            return operation, match.groupdict()
    return "unknown", {}


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _positive_int(value, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise StripeFailure(400, _error("invalid_request_error", f"Invalid positive integer: {name}", name))
    return number


def _error(type_: str, message: str, param: str | None = None, code: str | None = None) -> dict:
    error = {"type": type_, "message": message}
    if param:
        error["param"] = param
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    return error


def _fault_error(status: int) -> dict:
    if status == 429:
        return _error(
            "invalid_request_error",
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
    if status == 401:
        return _error("invalid_request_error", "Expired API Key provided: sk_test_****", code="api_key_expired")
    if status == 403:
        return _error(
            "invalid_request_error",
            "The provided key 'rk_test_****' does not have the required permissions for this endpoint.",
            code="secret_key_required",
        )
    return _error("api_error", "Sorry, something went wrong. We've already been notified of the problem.")


def _handler_for(fake: FakeStripe):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one answer, one segment: no delayed-ACK stalls

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, response, extra = fake.handle(method, self.path, self.headers, body)
            payload = json.dumps(response).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Stripe-Version", API_VERSION)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: its answer is lost, as a timeout loses it

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def log_message(self, *args):
            pass

    return Handler
