"""A receipt counts as stored only when the storage holds it whole: never a cut or empty PDF."""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from orders.models import Order
from orders.tasks import sweep_stuck_orders
from receipts.models import Receipt
from receipts.services import is_whole_pdf, receipt_storage
from tests.support.due_retries import run_due_retries


def receipt_bytes(order: Order) -> bytes:
    receipt = Receipt.objects.get(order=order)
    with receipt_storage().open(receipt.storage_key, "rb") as file:
        return file.read()


def test_a_stored_receipt_records_the_size_and_hash_of_the_file_it_kept(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})

    receipt = Receipt.objects.get(order=order)
    stored = receipt_bytes(order)
    assert is_whole_pdf(stored)
    assert (receipt.size, receipt.sha256) == (len(stored), hashlib.sha256(stored).hexdigest())


@pytest.mark.parametrize("left_behind", [b"", b"%PDF-1.7\n%cut off by a full disk"], ids=["empty", "cut"])
def test_a_cut_file_left_at_the_key_by_a_dead_worker_is_replaced_by_the_whole_receipt(
    shopper, make_product, held_pipeline, left_behind
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    held_pipeline.run_by_hand(order, "process_payment", "update_inventory")
    receipt = Receipt.objects.create(order=order)
    key = f"receipts/{receipt.created_at:%Y}/{receipt.created_at:%m}/{order.reference}.pdf"
    path = Path(receipt_storage().path(key))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(left_behind)

    held_pipeline.run_by_hand(order, "generate_receipt", "send_notification")

    order.refresh_from_db()
    assert order.state == "COMPLETED" and not order.needs_attention
    stored = receipt_bytes(order)
    assert is_whole_pdf(stored)
    assert Receipt.objects.get(order=order).size == len(stored)


@pytest.fixture
def small_receipt_disk(settings, tmp_path):
    """Receipts on a real 24 KiB tmpfs: too small for a receipt, until it is made larger."""
    if shutil.which("mount") is None:
        pytest.skip("needs mount(8)")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {"BACKEND": "receipts.storage.ReceiptFileStorage", "OPTIONS": {"location": str(mount_point)}},
    }
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_mid_write_leaves_no_cut_receipt_and_flags_the_order_until_it_is_stored(
    shopper, make_product, small_receipt_disk, settings
):
    make_product("MUG-001", on_hand=5)
    # A first order fills the disk: its receipt fits, the next one cannot.
    (small_receipt_disk / "filler").write_bytes(b"x" * (20 * 1024))

    order = shopper.buys({"MUG-001": 1})
    run_due_retries()

    order.refresh_from_db()
    assert order.state == "CONFIRMED" and order.needs_attention
    assert not Receipt.objects.get(order=order).stored_at
    assert [p.name for p in small_receipt_disk.rglob("*.pdf")] == []  # nothing cut left at the key
    assert list(small_receipt_disk.rglob(".partial-*")) == []

    (small_receipt_disk / "filler").unlink()
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    sweep_stuck_orders()

    order.refresh_from_db()
    assert order.state == "COMPLETED" and not order.needs_attention
    assert is_whole_pdf(receipt_bytes(order))
