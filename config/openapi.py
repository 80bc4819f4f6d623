"""The OpenAPI schema's links: how one answer leads to the next request.

A placed order's 202 carries its reference, which is what its status and receipt
addresses take; saying so in the schema lets clients (and schemathesis' stateful tests)
follow an order from POST to GET.
"""

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
