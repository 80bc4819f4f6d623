"""The order API: place an order, follow it, fetch its receipt."""

from functools import cache
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.decorators import method_decorator
from django.utils.http import RFC3986_SUBDELIMS
from django.views.decorators.http import condition
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from framework.throttling import (
    AddressRateThrottle,
    BodyFieldRateThrottle,
    charge_throttles,
    client_address,
    entries_read_along,
)
from orders.models import OrderState
from orders.reservations import HoldsLapsedRecently, TooManyUnitsHeld, UnpaidShareExceeded, lapse_key
from orders.selectors import (
    ReceiptUnavailable,
    order_for_shopper,
    order_version,
    order_with_idempotency_key,
    stored_credit_note,
    why_no_receipt,
)
from orders.services import IdempotencyConflict, InvalidOrderLines, place_order
from orders.waits import waiting_words
from payments.services import offered_test_payment_methods, stripe_js_publishable_key
from receipts.credit_notes import credit_note_download_url
from receipts.services import receipt_download_url


class PlacementByAddressThrottle(AddressRateThrottle):
    scope = "order_placement_address"

    def read_along(self, request) -> list[str]:
        # The address's lapse mark, in the count's round trip (orders.reservations).
        address = client_address(request)
        return [lapse_key(address)] if address else []


class PlacementByEmailThrottle(BodyFieldRateThrottle):
    scope = "order_placement_email"
    field = "email"

    def read_along(self, request) -> list[str]:
        email = request.data.get("email") if isinstance(request.data, dict) else None
        return [lapse_key(email)] if isinstance(email, str) and email.strip() else []


class LookupByAddressThrottle(AddressRateThrottle):
    scope = "order_lookup"


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON number without a fraction: "3" and 3.0 are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class OrderLineInput(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=settings.ORDER_MAX_QUANTITY)


# The body the API docs show: two mugs of the demo catalog (inventory/demo_catalog.csv),
# paid with Stripe's test card, so "Try it out" on a fresh `make run` places an order.
PLACE_ORDER_EXAMPLE = {
    "email": "shopper@example.com",
    "lines": [{"sku": "MUG-001", "quantity": 2}],
    "payment_method": "pm_card_visa",
}


@extend_schema_serializer(
    examples=[OpenApiExample("Two mugs, paid by card", value=PLACE_ORDER_EXAMPLE, request_only=True)]
)
class PlaceOrderInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    lines = serializers.ListField(
        child=OrderLineInput(), min_length=1, max_length=settings.ORDER_MAX_LINES, allow_empty=False
    )
    # A provider's payment method id (pm_card_visa, pm_1Nx...): letters, digits and underscores,
    # so nothing a shopper sends here can forge a log line or reach the provider as markup.
    payment_method = serializers.RegexField(
        r"^[A-Za-z0-9_]+\Z",
        max_length=100,
        error_messages={"invalid": "A payment method id: letters, digits and underscores only."},
    )


@extend_schema_field(serializers.ChoiceField(choices=OrderState.choices))
class OrderStateField(serializers.CharField):
    """An order's state: a plain string on the wire, the states' enum in the schema (so the
    shop page's generated types name every state)."""


class PaymentActionOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["authenticate"])
    client_secret = serializers.CharField()


class PlacedOrderOutput(serializers.Serializer):
    reference = serializers.CharField()
    state = OrderStateField()
    status_url = serializers.CharField()


class OrderLineOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    line_total = serializers.DecimalField(max_digits=14, decimal_places=2)
    units_left = serializers.IntegerField(
        allow_null=True,
        help_text="On an order refused for stock (`failure_code` out_of_stock): the units of this product that "
        "were left, 0 when sold out; null for a line that was not short.",
    )


class OrderEventOutput(serializers.Serializer):
    step = serializers.CharField()
    outcome = serializers.CharField()
    attempt = serializers.IntegerField()
    from_state = serializers.CharField()
    to_state = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField()
    at = serializers.DateTimeField(source="created_at")


class RefundOutput(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    reason = serializers.SerializerMethodField(
        help_text="Why, from the shop's list of refund reasons; empty where the shop keeps the reason to itself."
    )
    credit_note = serializers.SerializerMethodField(
        help_text="The number of the refund's credit note (CN-00000001), once issued; "
        "`/api/orders/<reference>/credit-notes/<number>` downloads it."
    )
    refunded_at = serializers.DateTimeField(
        source="updated_at", help_text="When the provider confirmed the refund (the money is on its way back)."
    )

    def get_reason(self, refund) -> str:
        return refund.reason_code.label if refund.reason_code.show_to_shopper else ""

    def get_credit_note(self, refund) -> str:
        note = getattr(refund, "credit_note", None)
        return note.number if note and note.stored_at else ""


class OrderOutput(serializers.Serializer):
    reference = serializers.CharField()
    state = OrderStateField()
    is_final = serializers.BooleanField(help_text="The order has reached an end: its state will not change again.")
    email = serializers.EmailField()
    currency = serializers.CharField()
    lines = OrderLineOutput(many=True)
    subtotal = serializers.DecimalField(max_digits=14, decimal_places=2)
    tax = serializers.DecimalField(max_digits=14, decimal_places=2)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    failure_code = serializers.CharField(allow_blank=True)
    failure_reason = serializers.CharField(allow_blank=True)
    payment_status = serializers.SerializerMethodField()
    payment_action = serializers.SerializerMethodField(
        help_text="What the shopper's page must do for the payment to go on: while the bank asks the shopper to "
        "authenticate (3-D Secure), `{type: 'authenticate', client_secret}` for Stripe.js `handleNextAction`; "
        "otherwise null."
    )
    receipt_url = serializers.SerializerMethodField()
    waiting = serializers.SerializerMethodField(
        help_text="While a step of the order waits (the shop paused it, or a provider is not answering): a calm "
        "sentence for the shopper, e.g. that the payment is waiting to go through; otherwise null. Nothing to do."
    )
    refunds = RefundOutput(
        many=True, source="refunds_made", help_text="Refunds that went through, oldest first (none while pending)."
    )
    amount_refunded = serializers.SerializerMethodField(
        help_text="The total refunded so far, as the payment provider reports it (0.00 when nothing was)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    history = OrderEventOutput(many=True, source="events")

    def get_payment_status(self, order) -> str | None:
        payment = getattr(order, "payment", None)
        return payment.status if payment else None

    @extend_schema_field(PaymentActionOutput(allow_null=True))
    def get_payment_action(self, order) -> dict | None:
        payment = getattr(order, "payment", None)
        if order.state != OrderState.VALIDATED or payment is None or not payment.client_secret:
            return None
        return {"type": "authenticate", "client_secret": payment.client_secret}

    def get_waiting(self, order) -> str | None:
        return waiting_words(order)

    @extend_schema_field(serializers.DecimalField(max_digits=14, decimal_places=2))
    def get_amount_refunded(self, order) -> str:
        payment = getattr(order, "payment", None)
        return f"{payment.amount_refunded if payment else 0:.2f}"

    def get_receipt_url(self, order) -> str | None:
        receipt = getattr(order, "receipt", None)
        if receipt is None or not receipt.stored_at:
            return None
        return receipt_download_url(receipt, base_url=self.context["request"].build_absolute_uri("/")[:-1])


# The error answers, as the schema documents them: field errors, or DRF's `detail`.
FIELD_ERRORS = {
    "type": "object",
    "description": "Each field in error, with its messages (a line's errors under its position in `lines`).",
    "additionalProperties": True,
    "example": {"email": ["Enter a valid email address."], "lines": {"0": {"sku": ["Unknown product 'X'."]}}},
}
DETAIL = inline_serializer("Detail", {"detail": serializers.CharField()})
BAD_REQUEST = OpenApiResponse(
    FIELD_ERRORS, description="Bad input: field errors, each field naming its problems; nothing was written."
)
NOT_FOUND = OpenApiResponse(DETAIL, description="No order with this reference.")


class NoReceiptOutput(serializers.Serializer):
    detail = serializers.CharField(help_text="Why there is no receipt, in words a shopper may read.")
    reason = serializers.ChoiceField(
        choices=ReceiptUnavailable.choices,
        help_text="; ".join(f"`{reason.value}`: {reason.label}" for reason in ReceiptUnavailable),
    )
    state = serializers.CharField(allow_null=True, help_text="The order's state (null for an unknown reference).")


# Reasons that pass: the shopper may ask again after this many seconds.
RETRY_RECEIPT_AFTER_SECONDS = {ReceiptUnavailable.ORDER_IN_PROGRESS: 5, ReceiptUnavailable.NOT_YET_GENERATED: 5}
TOO_MANY = OpenApiResponse(
    DETAIL, description="Too many requests from this client (or for this email); `Retry-After` says when to retry."
)


# The order page's path with this in place of its reference: reversed once per URL
# configuration and script prefix, not on every order (67 of its Python calls).
REFERENCE_SLOT = "REFERENCE"


@cache
def _order_path_template(urlconf: str | None, script_prefix: str) -> str:
    return reverse("order-detail", urlconf=urlconf, args=[REFERENCE_SLOT])


def _status_url(request, reference: str) -> str:
    template = _order_path_template(get_urlconf(), get_script_prefix())
    path = template.replace(REFERENCE_SLOT, quote(reference, safe=RFC3986_SUBDELIMS + "/~:@"))
    return request.build_absolute_uri(path)


class PlaceOrderApi(APIView):
    """POST /api/orders/ (and /api/place-order): accept an order and start its pipeline."""

    throttle_classes = [PlacementByAddressThrottle, PlacementByEmailThrottle]
    # Only an order placed uses up a quota: a request refused (by the other limit, by
    # validation) or a replay does not, so people sharing an address do not lock each other out.
    throttles_charged_on_success = True

    def check_throttles(self, request):
        try:
            super().check_throttles(request)
        except exceptions.Throttled:
            # A retry of an order already placed is answered with that order, whatever the limits.
            key = request.headers.get("Idempotency-Key")
            if not key or order_with_idempotency_key(key) is None:
                raise

    @extend_schema(
        request=PlaceOrderInput,
        responses={
            202: PlacedOrderOutput,
            400: BAD_REQUEST,
            409: OpenApiResponse(
                FIELD_ERRORS,
                description="The Idempotency-Key was used for a different order, or the order would hold more "
                "of a product unpaid than one client may (SHOP_MAX_UNPAID_SHARE; the error is on its line).",
            ),
            413: OpenApiResponse(DETAIL, description="The body is larger than the API accepts."),
            429: TOO_MANY,
        },
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (1 <= len(key) <= 255):
            raise exceptions.ValidationError({"Idempotency-Key": ["Must be 1 to 255 characters."]})
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        payload = PlaceOrderInput(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            placement = place_order(
                **payload.validated_data,
                idempotency_key=key,
                client_address=client_address(request),
                lapse_marks=entries_read_along(request),
            )
        except InvalidOrderLines as error:
            # DRF renders any mapping (JSON makes the positions "0", "1"); its stubs want str keys.
            raise exceptions.ValidationError({"lines": error.line_errors}) from error  # type: ignore[dict-item]
        except DjangoValidationError as error:
            raise exceptions.ValidationError(error.message_dict) from error
        except IdempotencyConflict as error:
            return Response({"Idempotency-Key": [str(error)]}, status=status.HTTP_409_CONFLICT)
        except UnpaidShareExceeded as error:
            # On the line it is about, as the shop page shows a line's problem.
            position = next(i for i, line in enumerate(payload.validated_data["lines"]) if line["sku"] == error.sku)
            return Response({"lines": {str(position): {"quantity": [str(error)]}}}, status=status.HTTP_409_CONFLICT)
        except HoldsLapsedRecently as error:
            return Response(
                {"lines": [str(error)]},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(error.wait)},
            )
        except TooManyUnitsHeld as error:
            return Response(
                {"detail": str(error)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(settings.RESERVATION_HOLD_SECONDS)},
            )
        order = placement.order
        if placement.created:
            charge_throttles(request)
        # PlacedOrderOutput's fields, all strings: written as they are, without building the
        # serializer's fields for each order.
        body = {
            "reference": order.reference,
            "state": str(order.state),
            "status_url": _status_url(request, order.reference),
        }
        headers = {"Location": body["status_url"]}
        if not placement.created:
            headers["Idempotent-Replayed"] = "true"
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


def _order_etag(request, reference: str) -> str | None:
    # Weak: the body's signed receipt link differs from one second to the next, its meaning not.
    version = order_version(reference)
    return f'W/"{version}"' if version else None


class OrderDetailApi(APIView):
    """GET /api/orders/<reference>/: the order's state, lines, totals and history.

    Answers with an ETag; a poll sending it back as If-None-Match gets a bodiless 304 while
    nothing changed, for one small query.
    """

    throttle_classes = [LookupByAddressThrottle]

    @extend_schema(
        responses={200: OrderOutput, 304: None, 404: NOT_FOUND, 429: TOO_MANY},
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)],
    )
    @method_decorator(condition(etag_func=_order_etag))
    def get(self, request, reference: str):
        order = order_for_shopper(reference)
        if order is None:
            raise Http404
        return Response(OrderOutput(order, context={"request": request}).data)


class OrderReceiptApi(APIView):
    """GET /api/orders/<reference>/receipt: a redirect to a freshly signed receipt link.

    Emails carry this stable address; the signed link it leads to expires quickly.
    """

    throttle_classes = [LookupByAddressThrottle]

    @extend_schema(
        responses={
            302: OpenApiResponse(description="To a freshly signed link to the PDF."),
            404: OpenApiResponse(
                NoReceiptOutput,
                description="No receipt to download, and why (`reason`). While the reason may pass "
                "(`order_in_progress`, `not_yet_generated`), `Retry-After` says when to ask again.",
            ),
            429: TOO_MANY,
        }
    )
    def get(self, request, reference: str):
        order = order_for_shopper(reference)
        if reason := why_no_receipt(order):
            body = NoReceiptOutput({"detail": reason.label, "reason": reason.value, "state": order and order.state})
            retry_after = RETRY_RECEIPT_AFTER_SECONDS.get(reason)
            headers = {"Retry-After": str(retry_after)} if retry_after else None
            return Response(body.data, status=status.HTTP_404_NOT_FOUND, headers=headers)
        assert order is not None  # why_no_receipt answered: the order exists and has its receipt
        return HttpResponseRedirect(receipt_download_url(order.receipt, base_url=request.build_absolute_uri("/")[:-1]))


class OrderCreditNoteApi(APIView):
    """GET /api/orders/<reference>/credit-notes/<number>: a redirect to a freshly signed link.

    The refund email carries this stable address; the signed link it leads to expires quickly.
    """

    throttle_classes = [LookupByAddressThrottle]

    @extend_schema(
        responses={
            302: OpenApiResponse(description="To a freshly signed link to the credit note's PDF."),
            404: OpenApiResponse(description="No such stored credit note on this order."),
            429: TOO_MANY,
        }
    )
    def get(self, request, reference: str, number: str):
        note = stored_credit_note(reference, number)
        if note is None:
            raise Http404("No such credit note.")
        return HttpResponseRedirect(credit_note_download_url(note, base_url=request.build_absolute_uri("/")[:-1]))


class PaymentMethodOptionOutput(serializers.Serializer):
    id = serializers.CharField()
    # A declared field, taken off the class by DRF's metaclass: it does not replace Field.label.
    label = serializers.CharField()  # type: ignore[assignment]


class ShopConfigOutput(serializers.Serializer):
    shop_name = serializers.CharField()
    stripe_publishable_key = serializers.CharField(
        help_text="Set: the page collects cards with Stripe.js (Elements). Empty: it offers the test methods."
    )
    test_mode = serializers.BooleanField(help_text="No real money moves: the page says so.")
    test_payment_methods = PaymentMethodOptionOutput(many=True)
    tax_rate = serializers.DecimalField(max_digits=7, decimal_places=4, help_text="0.2 is 20%.")


class ShopConfigApi(APIView):
    """GET /api/shop-config: what the shop page needs to know before it can take an order."""

    @extend_schema(responses={200: ShopConfigOutput})
    def get(self, request):
        publishable_key = stripe_js_publishable_key()
        test_mode = settings.PAYMENT_GATEWAY != "stripe" or not settings.STRIPE_SECRET_KEY.startswith(
            ("sk_live_", "rk_live_")
        )
        config = {
            "shop_name": settings.SHOP_NAME,
            "stripe_publishable_key": publishable_key,
            "test_mode": test_mode,
            "test_payment_methods": offered_test_payment_methods(),
            "tax_rate": settings.SHOP_TAX_RATE,
        }
        return Response(ShopConfigOutput(config).data)
