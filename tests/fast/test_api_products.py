"""GET /api/products/: what is for sale and how many units a shopper can still order."""


def test_products_for_sale_list_their_price_as_a_decimal_string_and_units_available(api, make_product):
    make_product("MUG-001", name="Mug", price="12.50", currency="USD", on_hand=7)
    make_product("BAG-002", name="Bag", price="1200.00", currency="EUR", on_hand=0)

    response = api.get("/api/products/")

    assert response.status_code == 200
    assert response.json() == [
        {"sku": "BAG-002", "name": "Bag", "price": "1200.00", "currency": "EUR", "available": 0, "low_stock": False},
        {"sku": "MUG-001", "name": "Mug", "price": "12.50", "currency": "USD", "available": 7, "low_stock": False},
    ]


def test_retired_products_are_not_listed(api, make_product):
    make_product("MUG-001", on_hand=3)
    make_product("POSTER-OLD", on_hand=3, active=False)

    skus = [product["sku"] for product in api.get("/api/products/").json()]

    assert skus == ["MUG-001"]


def test_available_is_on_hand_minus_what_orders_in_flight_have_reserved(api, make_product, shopper, held_pipeline):
    make_product("MUG-001", on_hand=10)
    shopper.buys({"MUG-001": 3})
    held_pipeline.lose_queued()

    (mug,) = api.get("/api/products/").json()

    assert mug["available"] == 7


def test_sold_units_are_no_longer_available(api, make_product, shopper):
    make_product("MUG-001", on_hand=10)

    shopper.buys({"MUG-001": 4})

    assert api.get("/api/products/").json()[0]["available"] == 6
