"""The periodic tasks declared in framework/schedules.py are what `migrate` leaves in the database."""

import dataclasses

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from framework import schedules
from framework.schedules import SCHEDULES


def migrate() -> None:
    """`migrate` with nothing left to apply: what a deploy runs; it ends with post_migrate."""
    call_command("migrate", verbosity=0, interactive=False)


def as_declared(row: Schedule) -> schedules.DeclaredSchedule:
    """The row read back as a declaration, every declared field from the row."""
    names = [field.name for field in dataclasses.fields(schedules.DeclaredSchedule)]
    return schedules.DeclaredSchedule(**{name: getattr(row, name) for name in names})


def rows_as_declared() -> set[schedules.DeclaredSchedule]:
    return {as_declared(row) for row in Schedule.objects.all()}


@pytest.fixture
def sweeper_every_five_minutes(monkeypatch):
    """The table as it would read after someone changed the sweeper's interval in code."""
    changed = tuple(
        dataclasses.replace(declared, minutes=5) if declared.func == "orders.tasks.sweep_stuck_orders" else declared
        for declared in SCHEDULES
    )
    monkeypatch.setattr(schedules, "SCHEDULES", changed)
    return changed


def test_after_migrate_the_schedules_are_exactly_the_declared_ones(db):
    migrate()

    assert rows_as_declared() == set(SCHEDULES)
    assert Schedule.objects.count() == len(SCHEDULES)


def test_the_declared_schedules_are_the_sweeper_the_audit_the_release_the_holds_the_reconciler_alarms_retention_cache():
    assert {(s.func, s.schedule_type, s.minutes, s.repeats) for s in SCHEDULES} == {
        ("orders.tasks.sweep_stuck_orders", Schedule.MINUTES, 1, -1),
        ("orders.tasks.audit_invariants", Schedule.MINUTES, 5, -1),
        ("orders.tasks.release_expired_reservations", Schedule.MINUTES, 1, -1),
        ("orders.tasks.settle_lapsing_holds", Schedule.MINUTES, 15, -1),
        ("payments.tasks.reconcile_payments", Schedule.MINUTES, 10, -1),
        ("monitoring.tasks.evaluate_alarms", Schedule.MINUTES, 1, -1),
        ("orders.tasks.anonymise_expired_shopper_data", Schedule.DAILY, None, -1),
        ("framework.tasks.delete_expired_cache_entries", Schedule.MINUTES, 10, -1),
    }


def test_migrating_again_writes_no_second_copy(db):
    migrate()
    migrate()

    assert Schedule.objects.count() == len(SCHEDULES)


def test_a_changed_declaration_updates_its_row_on_the_next_migrate(db, sweeper_every_five_minutes):
    before = Schedule.objects.get(name="sweep stuck orders")

    migrate()

    after = Schedule.objects.get(name="sweep stuck orders")
    assert (after.pk, after.minutes) == (before.pk, 5)
    assert after.next_run == before.next_run  # the cluster's bookkeeping is its own
    assert rows_as_declared() == set(sweeper_every_five_minutes)


def test_a_row_edited_by_hand_is_put_back_as_declared(db):
    Schedule.objects.filter(name="reconcile payments with the provider").update(minutes=60, repeats=3)

    migrate()

    assert rows_as_declared() == set(SCHEDULES)


def test_a_declared_schedule_deleted_by_hand_comes_back(db):
    Schedule.objects.filter(name="sweep stuck orders").delete()

    migrate()

    assert rows_as_declared() == set(SCHEDULES)


def test_a_schedule_made_by_hand_under_its_own_name_is_left_alone(db):
    by_hand = Schedule.objects.create(
        name="nightly export", func="inventory.tasks.export", schedule_type=Schedule.DAILY, repeats=-1
    )

    migrate()

    assert as_declared(Schedule.objects.get(pk=by_hand.pk)) == as_declared(by_hand)
    assert rows_as_declared() == set(SCHEDULES) | {as_declared(by_hand)}
