from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.functional import lazy
from drf_spectacular.views import SpectacularSwaggerSplitView

from config.framework_floor import FrameworkFloorApi
from config.frontend import favicon, shop_page
from config.metrics_view import metrics
from config.openapi import SchemaView
from inventory.apis import ProductListApi
from monitoring.views import monitoring_page
from orders.apis import OrderCreditNoteApi, OrderDetailApi, OrderReceiptApi, PlaceOrderApi, ShopConfigApi
from receipts.apis import CreditNoteDownloadApi, ReceiptDownloadApi
from staff.two_factor_views import enrolment_qr_code, second_factor_page

# Refusals name the permission that is missing (framework/permissions.py).
handler403 = "framework.permissions.permission_denied"

# The back office carries the shop's name, on every page and the login page, not Django's;
# read when a page renders, so it follows SHOP_NAME wherever it is set.
back_office_name = lazy(lambda: f"{settings.SHOP_NAME} back office", str)()
admin.site.site_header = admin.site.site_title = back_office_name
# Django's sidebar repeats the home page's list of models and takes 300 of a 1280 px laptop's
# pixels from every list; without it, lists show all their columns (breadcrumbs lead home).
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", shop_page, name="shop"),
    # The shopper's page of one order (the link emails carry): the same app, which reads the path.
    path("orders/<str:reference>", shop_page, name="shop-order"),
    path("favicon.ico", favicon, name="favicon"),
    # Before admin.site.urls, whose catch-all would take the address.
    path("admin/monitoring/", admin.site.admin_view(monitoring_page), name="monitoring"),
    path("admin/two-factor/", second_factor_page, name="two_factor"),
    path("admin/two-factor/qr.svg", enrolment_qr_code, name="two_factor_qr"),
    path("admin/", admin.site.urls),
    path("health/", include("monitoring.urls")),
    path("api/shop-config", ShopConfigApi.as_view(), name="shop-config"),
    path("api/products/", ProductListApi.as_view(), name="product-list"),
    path("api/orders/", PlaceOrderApi.as_view(), name="order-place"),
    path("api/place-order", PlaceOrderApi.as_view(), name="order-place-alias"),
    path("api/orders/<str:reference>/", OrderDetailApi.as_view(), name="order-detail"),
    path("api/orders/<str:reference>/receipt", OrderReceiptApi.as_view(), name="order-receipt"),
    path(
        "api/orders/<str:reference>/credit-notes/<str:number>", OrderCreditNoteApi.as_view(), name="order-credit-note"
    ),
    path("api/payments/", include("payments.urls")),
    path("api/partner/v1/", include("partners.urls")),
    path("receipts/<str:token>", ReceiptDownloadApi.as_view(), name="receipt-download"),
    path("credit-notes/<str:token>", CreditNoteDownloadApi.as_view(), name="credit-note-download"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("metrics", metrics, name="metrics"),
    # The split view serves its start-up script as a file, so Swagger UI runs under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]
if settings.FRAMEWORK_FLOOR_ENDPOINT:  # the benchmark's no-op POST (config/framework_floor.py)
    urlpatterns.append(path("bench/floor", FrameworkFloorApi.as_view(), name="framework-floor"))
