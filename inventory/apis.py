from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.selectors import products_for_sale


class ProductOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    available = serializers.SerializerMethodField()
    low_stock = serializers.SerializerMethodField(help_text="A few units left: at or below the low-stock threshold.")

    def get_available(self, product) -> int:
        return max(product.available or 0, 0)

    def get_low_stock(self, product) -> bool:
        return 0 < self.get_available(product) <= product.low_stock_threshold


class ProductListApi(APIView):
    """GET /api/products/: what is for sale and how many units can be ordered."""

    @extend_schema(responses={200: ProductOutput(many=True)})
    def get(self, request):
        return Response(ProductOutput(products_for_sale(), many=True).data)
