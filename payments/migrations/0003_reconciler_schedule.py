"""Schedule the payment reconciler every ten minutes, in every install."""

from django.db import migrations

RECONCILER = "payments.tasks.reconcile_payments"


def schedule_reconciler(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        func=RECONCILER,
        defaults={"name": "reconcile payments with the provider", "schedule_type": "I", "minutes": 10, "repeats": -1},
    )


def unschedule_reconciler(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=RECONCILER).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_stripe_refunds_events"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(schedule_reconciler, unschedule_reconciler)]
