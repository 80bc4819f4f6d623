from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inventory.models import Product
from inventory.stock_import import StockImportError, import_stock


class Command(BaseCommand):
    help = (
        "Create or update products from a CSV (sku,name,price,currency,on_hand[,reserved,available,"
        "low_stock_threshold,active]) and set their stock."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the catalog has products.")

    def handle(self, *args, file: Path, if_empty: bool, **options):
        if if_empty and Product.objects.exists():
            self.stdout.write("Catalog already loaded; nothing imported.")
            return
        try:
            result = import_stock(file)
        except (StockImportError, OSError) as error:
            raise CommandError(f"{file}: {error}; nothing was changed.") from error
        self.stdout.write(self.style.SUCCESS(f"Imported {file}: {result}."))
