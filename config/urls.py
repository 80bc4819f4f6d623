from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.frontend import shop_page
from inventory.apis import ProductListApi
from orders.apis import OrderDetailApi, OrderReceiptApi, PlaceOrderApi
from receipts.apis import ReceiptDownloadApi

urlpatterns = [
    path("", shop_page, name="shop"),
    path("admin/", admin.site.urls),
    path("api/products/", ProductListApi.as_view(), name="product-list"),
    path("api/orders/", PlaceOrderApi.as_view(), name="order-place"),
    path("api/place-order", PlaceOrderApi.as_view(), name="order-place-alias"),
    path("api/orders/<str:reference>/", OrderDetailApi.as_view(), name="order-detail"),
    path("api/orders/<str:reference>/receipt", OrderReceiptApi.as_view(), name="order-receipt"),
    path("api/payments/", include("payments.urls")),
    path("receipts/<str:token>", ReceiptDownloadApi.as_view(), name="receipt-download"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, so Swagger UI runs under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]
