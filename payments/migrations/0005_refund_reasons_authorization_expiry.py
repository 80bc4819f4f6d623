"""Refund reasons from a list (seeded here); when a payment's hold lapses. Refunds made
before reasons existed are filed under "other"; 0006 then makes the reason required (in a
migration of its own: PostgreSQL refuses to alter a table with row updates pending in the
same transaction)."""

from django.db import migrations, models
import django.db.models.deletion

REASONS = [
    # code, label, shown to the shopper
    ("damaged", "Damaged", True),
    ("wrong_item", "Wrong item", True),
    ("not_delivered", "Not delivered", True),
    ("goodwill", "Goodwill", True),
    ("duplicate_charge", "Duplicate charge", True),
    ("fraud", "Fraud", False),
    ("other", "Other", False),
]


def seed_reasons(apps, schema_editor):
    RefundReason = apps.get_model("payments", "RefundReason")
    for position, (code, label, shown) in enumerate(REASONS):
        RefundReason.objects.get_or_create(
            code=code, defaults={"label": label, "show_to_shopper": shown, "position": position}
        )
    apps.get_model("payments", "Refund").objects.filter(reason_code__isnull=True).update(reason_code="other")


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_payment_status_updated_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="RefundReason",
            fields=[
                ("code", models.SlugField(max_length=40, primary_key=True, serialize=False)),
                ("label", models.CharField(max_length=100)),
                ("show_to_shopper", models.BooleanField(default=True)),
                ("active", models.BooleanField(default=True, help_text="Offered on the refund form.")),
                ("position", models.PositiveSmallIntegerField(default=0)),
            ],
            options={"ordering": ["position", "label"]},
        ),
        migrations.AddField(
            model_name="refund",
            name="reason_code",
            field=models.ForeignKey(
                db_column="reason_code",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="refunds",
                to="payments.refundreason",
            ),
        ),
        migrations.RunPython(seed_reasons, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="refund",
            name="reason",
            field=models.CharField(blank=True, help_text="The manager's note, kept in the history.", max_length=200),
        ),
        migrations.AddField(
            model_name="payment",
            name="authorization_expires_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the provider's hold lapses and the amount can no longer be captured "
                "(Stripe's capture_before; the simulated gateway's window).",
                null=True,
            ),
        ),
    ]
