"""Schedule the sweeper that re-drives stuck orders, once per minute, in every install."""

from django.db import migrations

SWEEPER = "orders.tasks.sweep_stuck_orders"


def schedule_sweeper(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        func=SWEEPER, defaults={"name": "sweep stuck orders", "schedule_type": "I", "minutes": 1, "repeats": -1}
    )


def unschedule_sweeper(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=SWEEPER).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(schedule_sweeper, unschedule_sweeper)]
