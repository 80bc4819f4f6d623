"""The OpenAPI schema's links: how one answer leads to the next request.

A placed order's 202 carries its reference, which is what its status and receipt
addresses take; saying so in the schema lets clients (and schemathesis' stateful tests)
follow an order from POST to GET.
"""

from django.http import Http404
from drf_spectacular.views import SpectacularAPIView
from rest_framework.exceptions import NotAcceptable, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings

ORDER_LINKS = {
    "GetOrder": {
        "operationId": "orders_retrieve",
        "parameters": {"reference": "$response.body#/reference"},
        "description": "The order just placed: its state, lines, totals and history.",
    },
    "GetOrderReceipt": {
        "operationId": "orders_receipt_retrieve",
        "parameters": {"reference": "$response.body#/reference"},
        "description": "The order's receipt, once it is completed.",
    },
}


def add_order_links(result: dict, generator=None, request=None, public=None) -> dict:
    """A drf-spectacular postprocessing hook: link each placement's 202 to the order's GETs."""
    for path in ("/api/orders/", "/api/place-order"):
        accepted = result["paths"].get(path, {}).get("post", {}).get("responses", {}).get("202")
        if accepted is not None:
            accepted["links"] = ORDER_LINKS
    return result


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema (drf-spectacular), as YAML or JSON by the Accept header or `?format=`.

    An unknown `?format=` is a 400 naming the formats there are, and an Accept header none of
    them satisfies a 406; both refusals in JSON. DRF alone answers the first with a 404 and
    renders both as YAML, which reads as if the schema were gone."""

    def perform_content_negotiation(self, request, force=False):
        if force:  # choosing how to render a refusal: JSON unless the request's own choice works
            try:
                return super().perform_content_negotiation(request)
            except (Http404, NotAcceptable):
                return JSONRenderer(), JSONRenderer.media_type
        requested = request.query_params.get(api_settings.URL_FORMAT_OVERRIDE)
        formats = sorted({renderer.format for renderer in self.get_renderers()})
        if requested and requested not in formats:
            raise ValidationError(
                {"format": [f"Unknown format '{requested}': the schema is served as {' or '.join(formats)}."]}
            )
        return super().perform_content_negotiation(request)
