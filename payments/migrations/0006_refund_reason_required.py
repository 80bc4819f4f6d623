"""Every refund names a reason from the list (0005 filed the older ones under "other")."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0005_refund_reasons_authorization_expiry"),
    ]

    operations = [
        migrations.AlterField(
            model_name="refund",
            name="reason_code",
            field=models.ForeignKey(
                db_column="reason_code",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="refunds",
                to="payments.refundreason",
            ),
        ),
    ]
