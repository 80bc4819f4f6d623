"""Evaluate the alarm rules now: the cluster does it every minute; run this from cron (or a
systemd timer) as well where a dead cluster must still raise the alarm."""

from django.core.management.base import BaseCommand

from monitoring.alarms import evaluate_alarms


class Command(BaseCommand):
    help = "Evaluate every alarm rule once and email about what started or stopped firing."

    def handle(self, *args, **options):
        firing = evaluate_alarms()
        for alarm in firing:
            self.stdout.write(f"FIRING {alarm.rule}: {alarm.summary}")
        self.stdout.write(f"{len(firing)} alarms firing")
