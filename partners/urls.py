from django.urls import path

from partners.apis import PartnerOrderDetailApi, PartnerOrderListApi, PartnerStockAdjustmentApi, PartnerStockListApi

urlpatterns = [
    path("orders/", PartnerOrderListApi.as_view(), name="partner-order-list"),
    path("orders/<str:reference>/", PartnerOrderDetailApi.as_view(), name="partner-order-detail"),
    path("stock/", PartnerStockListApi.as_view(), name="partner-stock-list"),
    path("stock/adjustments/", PartnerStockAdjustmentApi.as_view(), name="partner-stock-adjustment"),
]
