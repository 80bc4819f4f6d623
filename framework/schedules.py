"""The periodic tasks of every install, declared here and applied on each `migrate`.

`SCHEDULES` is the one place to read or change when something runs on its own: the
django-q2 cluster's scheduler starts the due ones. `apply_schedules` runs on
`post_migrate` (connected in orders/apps.py) and makes the Schedule rows agree with this
table: a declared schedule missing from the database is created, one whose fields differ
is updated, one that already agrees is not written. Rows are matched by name, so a
schedule an operator made by hand in the admin, under another name, is left alone; the
cluster's own bookkeeping on a row (next run, last task) is never touched.

The data migrations orders/0002 and payments/0003 wrote the first versions of these rows;
they stay as history, and their rows carry the names used here, so this takes them over.
"""

from dataclasses import dataclass

from django.apps import apps as global_apps
from django.db import router, transaction
from django_q.models import Schedule

from framework.queue import Task


@dataclass(frozen=True)
class DeclaredSchedule:
    name: str
    func: Task  # the task the cluster runs
    schedule_type: str  # one of django_q's Schedule.TYPE, e.g. Schedule.MINUTES
    minutes: int | None = None  # for Schedule.MINUTES
    cron: str | None = None  # for Schedule.CRON
    repeats: int = -1  # -1: forever

    def fields(self) -> dict:
        """What the code owns on the row (everything but the name it is found by)."""
        return {
            "func": str(self.func),
            "schedule_type": self.schedule_type,
            "minutes": self.minutes,
            "cron": self.cron,
            "repeats": self.repeats,
        }


SCHEDULES: tuple[DeclaredSchedule, ...] = (
    # Re-drives orders stuck in a non-final state (a lost queue message, a dead worker);
    # how old counts as stuck is ORDER_STUCK_AFTER_SECONDS.
    DeclaredSchedule(
        name="sweep stuck orders",
        func=Task.SWEEP_STUCK_ORDERS,
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
    # Checks DESIGN.md's invariants over recent orders (AUDIT_WINDOW_HOURS) and records the run;
    # a violation is logged as an error, and the invariants alarm reads the latest run.
    DeclaredSchedule(
        name="audit invariants",
        func=Task.AUDIT_INVARIANTS,
        schedule_type=Schedule.MINUTES,
        minutes=5,
    ),
    # Ends unpaid orders whose reservation outlived RESERVATION_HOLD_SECONDS, so their stock
    # is on sale again: a hold lasts at most that plus this schedule's minute.
    DeclaredSchedule(
        name="release expired reservations",
        func=Task.RELEASE_EXPIRED_RESERVATIONS,
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
    # Anonymises shopper data of orders that ended more than SHOPPER_DATA_RETENTION_DAYS ago
    # (orders/erasure.py): at most 500 orders a run, so a backlog drains over a few nights.
    DeclaredSchedule(
        name="anonymise expired shopper data",
        func=Task.ANONYMISE_EXPIRED_SHOPPER_DATA,
        schedule_type=Schedule.DAILY,
    ),
    # Captures or voids, by AUTHORIZATION_LAPSE_POLICY, orders in PAID whose card hold lapses
    # within AUTHORIZATION_LAPSE_ACT_HOURS (orders/lapsing_holds.py).
    DeclaredSchedule(
        name="settle lapsing card holds",
        func=Task.SETTLE_LAPSING_HOLDS,
        schedule_type=Schedule.MINUTES,
        minutes=15,
    ),
    # Compares our payments with the provider's and flags disagreements for a manager;
    # its window is PAYMENT_RECONCILE_HOURS / PAYMENT_RECONCILE_AFTER_SECONDS.
    DeclaredSchedule(
        name="reconcile payments with the provider",
        func=Task.RECONCILE_PAYMENTS,
        schedule_type=Schedule.MINUTES,
        minutes=10,
    ),
    # Checks every alarm rule and emails the managers about what started or stopped firing
    # (monitoring/alarms.py; thresholds and recipients in config/settings/monitoring.py).
    DeclaredSchedule(
        name="evaluate alarms",
        func=Task.EVALUATE_ALARMS,
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
    # Deletes the database cache's expired entries (framework/cache_tables.py): the rate
    # limits' counters of windows gone by. Nothing to do with the Redis cache, which expires its own.
    DeclaredSchedule(
        name="delete expired cache entries",
        func=Task.DELETE_EXPIRED_CACHE_ENTRIES,
        schedule_type=Schedule.MINUTES,
        minutes=10,
    ),
)


def apply_schedules(sender=None, *, apps=None, using: str = "default", verbosity: int = 1, **kwargs) -> None:
    """Upsert every declared schedule by name (a `post_migrate` receiver; callable directly too).

    `apps` is the migration state `post_migrate` passes; the historical model is used so the
    handler works whatever django_q's current model class adds. Without django_q's tables in
    that state (migrated back to zero), there is nothing to write to.
    """
    try:
        model = (apps or global_apps).get_model("django_q", "Schedule")
    except LookupError:
        return
    if not router.allow_migrate_model(using, model):
        return
    rows = model._default_manager.using(using)
    with transaction.atomic(using=using):
        for declared in SCHEDULES:
            fields = declared.fields()
            same_name = rows.filter(name=declared.name)
            if not same_name.exists():
                rows.create(name=declared.name, **fields)
                action = "Created"
            elif same_name.exclude(**fields).update(**fields):
                action = "Updated"
            else:
                continue
            if verbosity >= 2:
                print(f"  {action} schedule {declared.name!r}: {declared.func}")
