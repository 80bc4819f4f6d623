from django.core.management.base import BaseCommand

from orders.erasure import erase_shopper


class Command(BaseCommand):
    help = (
        "Answer a shopper's erasure request: anonymise every ended order placed with EMAIL, keeping "
        "amounts, lines, receipt numbers and the ledger (docs/compliance.md). Recorded in the activity log."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email: str, **options):
        result = erase_shopper(email)
        if result.orders:
            self.stdout.write(
                self.style.SUCCESS(f"Anonymised {len(result.orders)} orders: {', '.join(result.orders)}.")
            )
        else:
            self.stdout.write("No ended order carries that address.")
        if result.left_open:
            self.stdout.write(
                self.style.WARNING(
                    f"Still in flight, left for now (run this again once they end): {', '.join(result.left_open)}."
                )
            )
