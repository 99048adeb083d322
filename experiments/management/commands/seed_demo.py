import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from experiments.demo import demo_exists, demo_seed


class Command(BaseCommand):
    help = "Seed the demo population, a year of events and a finished 3-arm experiment."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=20_000)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--anchor", type=str, default=None,
                            help="The demo's 'now' as YYYY-MM-DD (default: today, UTC).")
        parser.add_argument("--if-empty", action="store_true",
                            help="Do nothing when the demo is already seeded.")

    def handle(self, *args, customers: int, seed: int, anchor: str | None, if_empty: bool,
               **options):
        if customers < 10:
            raise CommandError("--customers must be at least 10")
        if demo_exists():
            if if_empty:
                self.stdout.write("Demo already seeded; nothing to do.")
                return
            raise CommandError("the demo is already seeded (use a fresh database)")
        try:
            when = (datetime.strptime(anchor, "%Y-%m-%d") if anchor
                    else datetime.now(UTC).replace(tzinfo=None)).replace(
                hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
        except ValueError:
            raise CommandError(f"--anchor must be YYYY-MM-DD, got {anchor!r}") from None
        started = time.perf_counter()
        result = demo_seed(customers=customers, seed=seed, anchor=when)
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {result.customers} customers, {result.events} events, "
            f"{result.assignments} assignments in {time.perf_counter() - started:.1f} s"))
