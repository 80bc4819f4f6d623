"""The partner API (/api/partner/v1/): orders and stock for a warehouse or an ERP, behind
API keys with scopes, rate limited per key. Each view parses, calls one selector or
service, and serializes."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.services import StockAdjustmentError
from orders.apis import OrderOutput, StrictIntegerField
from orders.models import OrderState
from partners.authentication import HasScope, PartnerKeyAuthentication, PartnerKeyRateThrottle
from partners.models import Scope
from partners.selectors import order_for_partner, orders_for_partner, stock_levels
from partners.services import IdempotencyConflict, adjust_stock_for_partner

# More units than any warehouse moves in one go: a typo, refused rather than applied.
MAX_UNITS = 1_000_000
DETAIL = inline_serializer("PartnerDetail", {"detail": serializers.CharField()})
FIELD_ERRORS = {
    "type": "object",
    "description": "Each field in error, with its messages; nothing was written.",
    "additionalProperties": True,
    "example": {"updated_since": ["Datetime has wrong format."]},
}
NO_SUCH_CURSOR = OpenApiResponse(DETAIL, description="A cursor this API did not give out.")
REFUSALS = {
    400: OpenApiResponse(FIELD_ERRORS, description="Bad input: field errors; nothing was written."),
    401: OpenApiResponse(DETAIL, description="No key, or a key that is unknown or revoked."),
    403: OpenApiResponse(DETAIL, description="The key lacks the scope this operation needs."),
    429: OpenApiResponse(DETAIL, description="Too many requests with this key; `Retry-After` says when to retry."),
}


class PartnerApi(APIView):
    """What every partner endpoint shares: the key, its scope, its rate limit."""

    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [PartnerKeyRateThrottle]
    required_scope: str


class CheckedCursorPagination(CursorPagination):
    """DRF's cursor pagination, with a forged cursor (a position that is no time) answered as
    DRF answers any cursor it cannot read, a 404, rather than by the database's error."""

    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError) as error:
            raise exceptions.NotFound(self.invalid_cursor_message) from error


class ChangedFirst(CheckedCursorPagination):
    """Orders in the order they last changed, oldest first: a partner keeps the last cursor
    (or the last `updated_at`) and asks for what changed since. Ties are broken by id."""

    ordering = ("updated_at", "id")
    page_size = 50
    max_page_size = 200


class BySku(CheckedCursorPagination):
    ordering = ("sku",)
    page_size = 100
    max_page_size = 500


class OrderFilters(serializers.Serializer):
    state = serializers.ChoiceField(choices=OrderState.choices, required=False)
    updated_since = serializers.DateTimeField(
        required=False, help_text="Only orders changed at or after this time (ISO 8601, with its offset)."
    )

    def validate_updated_since(self, value):
        # A time without its offset would be read in the server's zone: ask for it instead.
        raw = self.initial_data.get("updated_since", "")
        if raw and not (raw.endswith(("Z", "z")) or "+" in raw[10:] or "-" in raw[10:]):
            raise serializers.ValidationError("Give the time with its offset (Z or +01:00).")
        return value


class PartnerPaymentOutput(serializers.Serializer):
    status = serializers.CharField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    amount_refunded = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()


class PartnerOrderOutput(OrderOutput):
    """The order as its shopper's page shows it (orders/apis.py), with the payment's figures,
    less what only that page needs: the step history and the 3-D Secure client secret."""

    # DRF drops a parent's declared field set to None.
    payment_action = None  # type: ignore[assignment]
    payment_status = None  # type: ignore[assignment]
    history = None  # type: ignore[assignment]
    payment = PartnerPaymentOutput(allow_null=True, help_text="Null until the payment is set up.")


class StockLevelOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    active = serializers.BooleanField(help_text="On sale: an inactive product takes no new orders.")
    on_hand = serializers.IntegerField(source="stock.on_hand", default=0, help_text="Units in the warehouse.")
    reserved = serializers.IntegerField(
        source="stock.reserved", default=0, help_text="Units held by orders not yet shipped."
    )
    available = serializers.IntegerField(source="stock.available", default=0, help_text="on_hand - reserved.")


class StockAdjustmentInput(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    delta = StrictIntegerField(
        required=False,
        min_value=-MAX_UNITS,
        max_value=MAX_UNITS,
        help_text="Units to add (positive) or remove (negative). Give this or on_hand.",
    )
    on_hand = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=MAX_UNITS,
        help_text="The units counted in the warehouse: stock is brought to this number. Give this or delta.",
    )
    note = serializers.CharField(max_length=120, required=False, default="", allow_blank=True)

    def validate(self, attrs):
        if ("delta" in attrs) == ("on_hand" in attrs):
            raise serializers.ValidationError({"delta": ["Give either delta or on_hand, not both or neither."]})
        if attrs.get("delta") == 0:
            raise serializers.ValidationError({"delta": ["A change of 0 units changes nothing."]})
        return attrs


class StockAdjustmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    moved = serializers.IntegerField(help_text="The change of on-hand units the ledger recorded (0: none).")
    ledger_line = serializers.IntegerField(allow_null=True, help_text="The stock ledger line written, if any.")
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class PartnerOrderListApi(PartnerApi, ListAPIView):
    """GET /api/partner/v1/orders/: orders by the time they last changed, a page at a time."""

    required_scope = Scope.ORDERS_READ
    serializer_class = PartnerOrderOutput
    pagination_class = ChangedFirst

    def get_queryset(self):
        filters = OrderFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return orders_for_partner(**filters.validated_data)

    @extend_schema(
        parameters=[OrderFilters],
        responses={200: PartnerOrderOutput(many=True), 404: NO_SUCH_CURSOR, **REFUSALS},
        description="Needs the scope `orders:read`. Follow `next` until it is null; keep the last "
        "`updated_at` to ask only for what changed since.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PartnerOrderDetailApi(PartnerApi):
    """GET /api/partner/v1/orders/<reference>/: one order with lines, payment and receipt link."""

    required_scope = Scope.ORDERS_READ

    @extend_schema(
        responses={
            200: PartnerOrderOutput,
            404: OpenApiResponse(DETAIL, description="No order with this reference."),
            **{code: answer for code, answer in REFUSALS.items() if code != 400},
        },
        description="Needs the scope `orders:read`.",
    )
    def get(self, request, reference: str):
        # A reference is short and printable ("ord_..."); anything else is no order's, NUL included.
        order = order_for_partner(reference) if len(reference) <= 40 and reference.isprintable() else None
        if order is None:
            raise Http404
        return Response(PartnerOrderOutput(order, context={"request": request}).data)


class PartnerStockListApi(PartnerApi, ListAPIView):
    """GET /api/partner/v1/stock/: every product's units on hand, reserved and available."""

    required_scope = Scope.STOCK_READ
    serializer_class = StockLevelOutput
    pagination_class = BySku

    def get_queryset(self):
        return stock_levels()

    @extend_schema(
        responses={
            200: StockLevelOutput(many=True),
            404: NO_SUCH_CURSOR,
            **{code: answer for code, answer in REFUSALS.items() if code != 400},
        },
        description="Needs the scope `stock:read`.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PartnerStockAdjustmentApi(PartnerApi):
    """POST /api/partner/v1/stock/adjustments/: add, remove or count a product's stock, once
    per Idempotency-Key, through the same ledger and row lock as the back office."""

    required_scope = Scope.STOCK_WRITE

    @extend_schema(
        request=StockAdjustmentInput,
        responses={
            201: StockAdjustmentOutput,
            **REFUSALS,
            409: OpenApiResponse(FIELD_ERRORS, description="The Idempotency-Key was used for a different body."),
            422: OpenApiResponse(FIELD_ERRORS, description="Refused: it would leave fewer units than orders hold."),
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Any unique string (a UUID): sending the same request again with it returns "
                "the first answer and moves nothing.",
            )
        ],
        description="Needs the scope `stock:write`.",
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "")
        if not (1 <= len(key) <= 255 and key.isprintable()):
            raise exceptions.ValidationError({"Idempotency-Key": ["Required: 1 to 255 printable characters."]})
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        payload = StockAdjustmentInput(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            adjustment = adjust_stock_for_partner(key=request.auth, idempotency_key=key, **payload.validated_data)
        except DjangoValidationError as error:
            raise exceptions.ValidationError(error.message_dict) from error
        except IdempotencyConflict as error:
            return Response({"Idempotency-Key": [str(error)]}, status=status.HTTP_409_CONFLICT)
        except StockAdjustmentError as error:
            field = "on_hand" if "on_hand" in payload.validated_data else "delta"
            return Response({field: [str(error)]}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        headers = {} if adjustment.created else {"Idempotent-Replayed": "true"}
        return Response(adjustment.answer, status=status.HTTP_201_CREATED, headers=headers)
