"""The JSON API: Django REST framework's defaults, its rate limits and the OpenAPI schema
(drf-spectacular).

The API is anonymous (orders are placed by shoppers without accounts) and speaks JSON only,
in bodies of at most API_MAX_BODY_BYTES nested at most API_MAX_JSON_DEPTH deep
(config/request_limits.py). Rates are DRF's "number/period" (s, min, hour, day), counted in
the shared cache by client address, which is REMOTE_ADDR unless TRUSTED_PROXY_COUNT proxies
(nginx) stand in front and say who the client is in X-Forwarded-For. The Stripe webhook is
not a DRF view and is never throttled: Stripe retries what we refuse.
"""

from config.env import env_bool, env_int, env_str

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["config.request_limits.LimitedJSONParser"],
    # 0: the address is REMOTE_ADDR, never a header the client wrote (DRF's None would trust it).
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0),
    "DEFAULT_THROTTLE_RATES": {
        # Orders placed from one client address, and naming one email address.
        "order_placement_address": env_str("THROTTLE_ORDER_PLACEMENT_PER_ADDRESS", "20/min"),
        "order_placement_email": env_str("THROTTLE_ORDER_PLACEMENT_PER_EMAIL", "10/hour"),
        # Order status and receipt lookups from one client address (the shop page polls).
        "order_lookup": env_str("THROTTLE_ORDER_LOOKUP", "300/min"),
        # Requests of one partner API key, whatever it asks (docs/partner-api.md).
        "partner_key": env_str("THROTTLE_PARTNER_KEY", "600/min"),
    },
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Order processing API",
    "DESCRIPTION": "Place orders, follow them through the pipeline, download receipts.",
    "VERSION": "1.0.0",
    # Swagger UI from the installed package, not a CDN: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "NoReceiptReason": "orders.selectors.ReceiptUnavailable",
        "OrderState": "orders.models.OrderState",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.openapi.add_order_links"],
}

API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 20)

# The benchmark's no-op POST /bench/floor (config/framework_floor.py): Django's and DRF's own
# cost per request, beside the accepting request's. Off unless the bench's stack turns it on.
FRAMEWORK_FLOOR_ENDPOINT = env_bool("FRAMEWORK_FLOOR_ENDPOINT", False)
