from django.core.management.base import BaseCommand, CommandError

from core.db.creation import database_create


class Command(BaseCommand):
    help = ("Create the database DATABASE_URL names when it does not exist yet (PostgreSQL: "
            "needs a role with CREATEDB). Run before the first migrate; safe to repeat.")

    def handle(self, *args, **options):
        try:
            self.stdout.write(database_create())
        except Exception as exc:  # noqa: BLE001 - the operator needs the reason, not a traceback
            raise CommandError(f"could not create the database: {exc}") from exc
