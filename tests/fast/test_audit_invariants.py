"""`audit_invariants`: the product checks its own books and names what is wrong."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inventory.models import Stock
from orders.audit import audit_invariants, latest_audit_run
from orders.models import AuditRun, Order
from orders.tasks import audit_invariants as scheduled_audit
from payments.models import Payment
from receipts.models import Receipt


def violations(report) -> dict[str, list[str]]:
    return {check.name: check.examples for check in report.checks if check.violations}


def test_a_shop_that_sold_declined_and_rejected_orders_passes_the_audit(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    shopper.buys({"MUG-001": 2})
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")
    shopper.buys({"MUG-001": 9})

    report = audit_invariants()

    assert report.ok, violations(report)
    assert [check.violations for check in report.checks] == [0] * len(report.checks)


def test_a_reservation_no_open_order_holds_is_reported(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)
    shopper.buys({"MUG-001": 2})  # held in VALIDATED, 2 reserved: consistent
    assert audit_invariants().ok
    Stock.objects.update(reserved=3)

    found = violations(audit_invariants())

    assert found == {"reserved equals the reservations of open orders": ["MUG-001: reserved 3, open orders hold 2"]}


def test_a_ledger_that_drifted_from_on_hand_is_reported(make_product):
    make_product("MUG-001", on_hand=5)
    Stock.objects.update(on_hand=7)

    found = violations(audit_invariants())

    assert found["ledger sums to on hand"] == ["MUG-001: ledger 5, on hand 7"]


def test_a_completed_order_without_its_receipt_or_capture_is_reported(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    Receipt.objects.filter(order=order).update(stored_at=None)
    Payment.objects.filter(order=order).update(status=Payment.Status.AUTHORIZED)

    found = violations(audit_invariants())

    assert found["every completed order has one captured payment and one receipt"] == [
        f"{order.reference}: completed without a captured payment",
        f"{order.reference}: completed without a stored receipt",
    ]


def test_a_failed_order_still_holding_money_is_reported_once_compensation_had_time(shopper, make_product, settings):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_capture_unavailable")
    assert order.state == "FAILED"
    Payment.objects.filter(order=order).update(status=Payment.Status.AUTHORIZED)
    settings.ORDER_STUCK_AFTER_SECONDS = 3600
    assert audit_invariants().ok  # compensation may still be on its way

    settings.ORDER_STUCK_AFTER_SECONDS = 0
    found = violations(audit_invariants())

    assert found["no failed or cancelled order holds money"] == [
        f"{order.reference}: FAILED with its payment authorized"
    ]


def test_the_window_leaves_out_orders_not_touched_recently(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    Receipt.objects.filter(order=order).update(stored_at=None)
    Order.objects.filter(pk=order.pk).update(updated_at=order.updated_at.replace(year=2020))

    assert audit_invariants(window_hours=24).ok and audit_invariants(window_hours=24).orders_read == 0
    assert not audit_invariants().ok and audit_invariants().orders_read == 1


def test_the_command_prints_a_json_report_and_fails_on_a_violation(make_product, capsys):
    make_product("MUG-001", on_hand=5)
    call_command("audit_invariants", "--all")
    assert json.loads(capsys.readouterr().out)["ok"] is True

    Stock.objects.update(on_hand=7)
    with pytest.raises(CommandError) as failed:
        call_command("audit_invariants", "--all")

    report = json.loads(capsys.readouterr().out)
    assert failed.value.returncode == 1
    assert report["violations"] == 1
    assert report["checks"][0] == {
        "name": "ledger sums to on hand",
        "violations": 1,
        "examples": ["MUG-001: ledger 5, on hand 7"],
    }


def test_the_scheduled_audit_logs_each_violation_as_an_error(make_product, caplog):
    make_product("MUG-001", on_hand=5)
    Stock.objects.update(on_hand=7)

    assert scheduled_audit() == 1

    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "ledger sums to on hand" in record.getMessage() and "MUG-001" in record.getMessage()


def test_every_audit_run_is_recorded_with_its_findings_for_the_alarm_to_read(make_product):
    make_product("MUG-001", on_hand=5)
    Stock.objects.filter(product__sku="MUG-001").update(on_hand=9)

    scheduled_audit()
    with pytest.raises(CommandError):
        call_command("audit_invariants", "--all", stdout=io.StringIO())

    runs = list(AuditRun.objects.order_by("started_at"))
    assert [(run.window_hours, run.violations) for run in runs] == [(24, 1), (None, 1)]
    assert latest_audit_run() == runs[-1]
    assert runs[-1].report["checks"][0]["examples"] == ["MUG-001: ledger 5, on hand 9"]
