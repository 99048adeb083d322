from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from experiments.minethatdata_import import hillstrom_import


class Command(BaseCommand):
    help = "Import the MineThatData (Hillstrom) e-mail campaign CSV (.csv or .csv.gz)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options):
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        try:
            result = hillstrom_import(path)
        except ValidationError as exc:
            raise CommandError(f"nothing imported: {exc.message_dict}") from None
        self.stdout.write(
            f"{result.rows} rows: {result.customers_created} customers, "
            f"{result.assignments_created} assignments, {result.events_created} events created"
        )
