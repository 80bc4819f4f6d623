"""History events get a kind, structured parameters and the kind of actor behind them.

Rows written before keep reading as they did: each is given the kind its step and outcome
meant, and what its `error` column held that was no error moves into its parameters.
"""

from django.db import migrations, models

KINDS = [
    ("state_changed", "State changed"),
    ("step_succeeded", "Step succeeded"),
    ("step_retrying", "Step will be retried"),
    ("step_failed", "Step failed"),
    ("step_waiting", "Step waits"),
    ("flagged", "Flagged for attention"),
    ("refund_requested", "Refund requested"),
    ("refund_succeeded", "Refund succeeded"),
    ("refund_refused", "Refund refused"),
    ("refund_recorded", "Refund recorded from the provider"),
]
ACTOR_KINDS = [
    ("pipeline", "Pipeline"),
    ("shopper", "Shopper"),
    ("manager", "Manager"),
    ("webhook", "Webhook"),
    ("sweeper", "Sweeper"),
    ("reconciler", "Reconciler"),
    ("alarm", "Alarm"),
]
FLAGGING_STEPS = {"reconcile_payments": "reconciler", "stripe_dispute": "webhook"}


def _classify(event) -> None:
    """Give an event written before kinds existed the kind its step and outcome meant."""
    text = event.error
    if event.step in FLAGGING_STEPS:
        event.kind, event.actor_kind, event.error = "flagged", FLAGGING_STEPS[event.step], ""
        event.parameters = {"finding": text, "message": text}
    elif event.step in ("request_refund", "refund_payment", "stripe_webhook"):
        kind = {"request_refund": "refund_requested", "stripe_webhook": "refund_recorded"}.get(event.step)
        kind = kind or ("refund_succeeded" if event.outcome == "succeeded" else "refund_refused")
        event.kind, event.error = kind, text if kind == "refund_refused" else ""
        event.actor_kind = {"request_refund": "manager", "stripe_webhook": "webhook"}.get(event.step, "pipeline")
        event.parameters = {"note": text}
    elif event.to_state:
        event.kind = "state_changed"
    elif event.outcome == "retrying":
        event.kind = "step_retrying"
    elif event.outcome == "skipped":
        event.kind, event.error, event.parameters = "step_waiting", "", {"why": text}
    elif event.outcome == "failed":
        event.kind = "step_failed"
    else:
        event.kind, event.error, event.parameters = "step_succeeded", "", {"detail": text}
    if event.actor and event.actor_kind == "pipeline":
        event.actor_kind = "manager"


def classify_old_events(apps, schema_editor):
    OrderEvent = apps.get_model("orders", "OrderEvent")
    for event in OrderEvent.objects.filter(kind="").iterator(chunk_size=2000):
        _classify(event)
        event.save(update_fields=["kind", "error", "parameters", "actor_kind"])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_tax_rate_and_event_actor"),
    ]

    operations = [
        migrations.AddField(
            model_name="orderevent",
            name="kind",
            field=models.CharField(choices=KINDS, default="", max_length=30),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="orderevent",
            name="parameters",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="orderevent",
            name="actor_kind",
            field=models.CharField(choices=ACTOR_KINDS, default="pipeline", max_length=20),
        ),
        migrations.RunPython(classify_old_events, migrations.RunPython.noop),
    ]
