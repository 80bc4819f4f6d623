"""A database that cannot be reached: the API answers 503 with a JSON body and Retry-After."""

import pytest
from django.db import connection


@pytest.fixture
def database_away(transactional_db):
    """The real connection pointed at a place no database answers, then put back."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/folder/shop.sqlite3"
    else:
        connection.settings_dict["PORT"] = "1"  # nothing listens on port 1
    yield
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


def test_an_api_request_while_the_database_is_away_gets_a_json_503_with_retry_after(api, database_away):
    response = api.get("/api/products/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"] == "application/json"
    assert "try again" in response.json()["detail"]


def test_placing_an_order_while_the_database_is_away_gets_a_json_503(api, database_away):
    body = {
        "email": "shopper@example.com",
        "lines": [{"sku": "MUG-001", "quantity": 1}],
        "payment_method": "pm_card_visa",
    }

    response = api.post("/api/orders/", body, format="json")

    assert response.status_code == 503
    assert response.json()["detail"]
