"""Receipts get an opaque random link id: download links carry it instead of the order's
reference and the receipt's number. Added nullable, filled one by one (each its own random
value), then made unique and required."""

from django.db import migrations, models

import receipts.models


def give_every_receipt_a_link_id(apps, schema_editor):
    Receipt = apps.get_model("receipts", "Receipt")
    for receipt in Receipt.objects.filter(link_id__isnull=True).only("pk"):
        Receipt.objects.filter(pk=receipt.pk).update(link_id=receipts.models.new_link_id())


class Migration(migrations.Migration):
    dependencies = [
        ("receipts", "0002_receipt_sha256"),
    ]

    operations = [
        migrations.AddField(
            model_name="receipt",
            name="link_id",
            field=models.CharField(max_length=32, null=True, editable=False),
        ),
        migrations.RunPython(give_every_receipt_a_link_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="receipt",
            name="link_id",
            field=models.CharField(default=receipts.models.new_link_id, editable=False, max_length=32, unique=True),
        ),
    ]
