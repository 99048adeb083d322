"""Session settings for the heavy statements: aggregates over a million rows,
segment counts, scoring reads, analyses.

PostgreSQL's defaults suit many small queries: 4 MB of work_mem per sort or
hash (a million assignments then spill to disk in dozens of batches) and JIT
compilation, which for a statement of a few seconds spends more time
compiling expressions than it saves (and, on a huge condition, compiles for
many minutes without answering a cancel). ``large_aggregates`` raises
work_mem, turns JIT off and bounds each statement by
ANALYTICS_STATEMENT_TIMEOUT, all with SET LOCAL, so they end with the
transaction and no other query is affected. SQLite has nothing to tune.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction


@contextmanager
def large_aggregates() -> Iterator[None]:
    """A transaction tuned for big GROUP BYs and hash joins (PostgreSQL)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('work_mem', %s, true), "
                               "set_config('jit', 'off', true), "
                               "set_config('statement_timeout', %s, true)",
                               [settings.ANALYTICS_WORK_MEM, settings.ANALYTICS_STATEMENT_TIMEOUT])
        yield
