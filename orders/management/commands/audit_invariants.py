"""manage.py audit_invariants: check the books, print a JSON report, exit 1 on any violation.

The run is recorded like a scheduled one, so the invariants alarm sees its findings.
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orders.audit import run_audit


class Command(BaseCommand):
    help = "Check DESIGN.md's invariants (stock, money, receipts, emails); exit status 1 on a violation."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="every order, not only the recent window")
        parser.add_argument("--window-hours", type=int, default=None, help="orders touched in the last N hours")

    def handle(self, *args, **options):
        window = None if options["all"] else (options["window_hours"] or settings.AUDIT_WINDOW_HOURS)
        report = run_audit(window_hours=window)
        self.stdout.write(json.dumps(report.as_json(), indent=2))
        if not report.ok:
            raise CommandError(f"{report.violations} invariant violation(s)", returncode=1)
