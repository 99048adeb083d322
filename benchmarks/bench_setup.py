"""Shared set-up for the benchmark scripts: Django on a benchmark database.

The scripts default to PostgreSQL at BENCH_DATABASE_URL
(postgres://postgres@127.0.0.1:5432/campaign_bench), created and migrated on
first use, and seeded once with the demo generator at the requested size.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/campaign_bench"


def django_setup(database_url: str | None = None) -> str:
    """Point Django at the benchmark database (creating it if needed) and set it up."""
    url = database_url or os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if url.startswith("postgres"):
        import psycopg

        server, name = url.rsplit("/", 1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "true")  # a measurement on this machine, not a deployment
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return url


def demo_ensure(customers: int, seed: int = 7) -> None:
    """Seed the demo at this size unless the database already holds it."""
    from datetime import UTC, datetime

    from experiments.demo import demo_exists, demo_seed
    from marketing.models import Customer

    if demo_exists():
        have = Customer.objects.filter(external_id__startswith="demo-").count()
        if have != customers:
            raise SystemExit(f"the benchmark database holds {have} demo customers, not {customers}: "
                             "drop it or pass the matching --customers")
        return
    started = time.perf_counter()
    result = demo_seed(customers=customers, seed=seed,
                       anchor=datetime.now(UTC).replace(hour=0, minute=0, second=0,
                                                        microsecond=0))
    print(f"seeded {result.customers:,} customers and {result.events:,} events "
          f"in {time.perf_counter() - started:.1f} s")
    fresh_statistics()


def fresh_statistics() -> None:
    """VACUUM ANALYZE, so the planner knows the sizes a bulk load or delete left."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
