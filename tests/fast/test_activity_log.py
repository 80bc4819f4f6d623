"""The staff activity log: every staff write with who, when, on what, before and after, read by
the auditor in the admin and written by no one there."""

import re
from decimal import Decimal

from auditlog.models import LogEntry
from django.core.management import call_command

from backoffice import actions
from framework.activity import record_staff_activity
from inventory.models import Product
from orders.models import OrderEvent
from tests.support.admin_client import open_form

LOG = "/admin/auditlog/logentry/"


def rows(client, query: str = "") -> list[str]:
    """The log page's rows as the text a reader sees, newest first."""
    html = client.get(LOG + query).content.decode()
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    found = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S) if body else []
    texts = (re.sub(r"<[^>]+>", " ", row).replace("&#x27;", "'") for row in found)
    return [" ".join(text.split()).replace(" :", ":") for text in texts]


def test_a_price_edit_shows_who_and_the_old_and_new_price_to_the_auditor_and_a_clerk_cannot_open_it(
    staff_client, make_product
):
    mug = make_product("MUG-001", price=Decimal("12.50"), on_hand=5)
    clerk = staff_client("clerk", "carla")
    url = f"/admin/inventory/product/{mug.pk}/change/"
    assert clerk.post(url, {**open_form(clerk, url), "price": "13.90"}).status_code == 302
    auditor = staff_client("auditor", "aud")

    shown = rows(auditor)

    assert any("carla" in row and "price: 12.50 → 13.90" in row and "MUG-001" in row for row in shown), shown
    # The signed-in clerk's address is kept with the entry (the session's requests only).
    assert LogEntry.objects.get(actor__username="carla").remote_addr == "127.0.0.1"
    assert clerk.get(LOG).status_code == 403
    assert staff_client("manager", "mona").get(LOG).status_code == 403


def test_the_log_filters_by_person_object_and_date_and_nobody_edits_or_deletes_it(staff_client, make_product):
    mug = make_product("MUG-001", on_hand=5)
    tee = make_product("TEE-001", on_hand=5)
    clerk = staff_client("clerk", "carla")
    for product, quantity in ((mug, "3"), (tee, "4")):
        restock = f"/admin/inventory/product/{product.pk}/restock/"
        clerk.post(restock, {**open_form(clerk, restock), "quantity": quantity, "reason": "delivery"})
    boss = staff_client("superuser", "boss")
    entry = LogEntry.objects.filter(actor=clerk.user).first()

    by_person = rows(boss, f"?actor__id__exact={clerk.user.pk}")
    by_object = rows(boss, f"?q=TEE-001&actor__id__exact={clerk.user.pk}")
    today = entry.timestamp.date().isoformat()
    by_date = rows(boss, f"?timestamp__gte={today}&timestamp__lt=2999-01-01&actor__id__exact={clerk.user.pk}")

    assert len(by_person) == 2 and all("carla" in row and "restock stock" in row for row in by_person)
    assert by_object == [r for r in by_person if "TEE-001" in r] and "on_hand: 5 → 9" in by_object[0]
    assert by_date == by_person and rows(boss, f"?timestamp__gte=2999-01-01&actor__id__exact={clerk.user.pk}") == []
    change = f"{LOG}{entry.pk}/change/"
    assert boss.get(change).status_code == 200  # readable, with no Save button
    assert 'name="_save"' not in boss.get(change).content.decode()
    boss.post(change, {"changes": "{}"})
    assert boss.post(f"{LOG}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert boss.get(f"{LOG}add/").status_code == 403
    assert LogEntry.objects.get(pk=entry.pk).changes == entry.changes


def test_a_managers_refund_is_in_the_log_as_a_reference_to_the_orders_history_not_a_copy(
    staff_client, make_product, shopper
):
    staff_client("manager", "mona")
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    actions.refund_order(
        order, manager="mona", reason="chipped", refund_reason="damaged", amount=Decimal("5.00"), action_token="t1"
    )

    entries = list(LogEntry.objects.filter(actor__username="mona"))
    events = OrderEvent.objects.filter(order=order, actor="mona")
    assert entries and {e.additional_data["order_event"] for e in entries} == set(events.values_list("pk", flat=True))
    assert all(e.object_pk == str(order.pk) and "chipped" not in str(e.additional_data) for e in entries)
    assert any("refund" in e.additional_data["what"] for e in entries)


def test_create_staff_records_the_account_and_its_role_by_the_command(db):
    call_command("create_staff", "rita", "--role", "clerk", "--password", "a long enough password 1")
    call_command("create_staff", "rita", "--role", "manager", "--email", "rita@shop.example")

    first, second = LogEntry.objects.filter(object_repr="rita").order_by("timestamp", "id")

    assert (first.actor, first.actor_email) == (None, "manage.py create_staff")
    assert first.changes["roles"] == [None, ["Stock clerk"]] and first.changes["password"] == [None, "set"]
    assert second.changes["roles"] == [["Stock clerk"], ["Order manager"]]
    assert second.changes["email"] == ["", "rita@shop.example"] and "password" not in second.changes


def test_record_staff_activity_is_the_one_call_for_whatever_else_staff_do(db, django_user_model):
    holder = django_user_model.objects.create_user("hank", is_staff=True)

    entry = record_staff_activity(
        actor="hank", what="hold payments", before={"held": False}, after={"held": True}, reason="provider down"
    )

    assert (entry.actor, entry.object_repr, entry.changes) == (holder, "the shop", {"held": [False, True]})
    assert entry.additional_data == {"what": "hold payments", "reason": "provider down"}
    assert Product.objects.count() == 0
