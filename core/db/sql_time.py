"""Date arithmetic in hand-written SQL, the same meaning on PostgreSQL and SQLite.

PostgreSQL has real timestamps and intervals. SQLite stores Django datetimes
as text, so comparisons that need arithmetic go through julianday(), exact
to well under a second, which is all day-sized windows need.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection


def shifted(column: str, days: float) -> tuple[str, list]:
    """SQL for ``column + days`` (days may be negative) in a comparable form."""
    if connection.vendor == "postgresql":
        return f"({column} + %s)", [timedelta(days=days)]
    return f"(julianday({column}) + %s)", [days]


def comparable(column: str) -> str:
    """SQL for ``column`` in the form ``shifted`` returns, so the two compare."""
    return column if connection.vendor == "postgresql" else f"julianday({column})"


def instant(value: datetime) -> tuple[str, list]:
    """SQL for a datetime parameter that ``days_between`` and ``comparable`` accept."""
    adapted = connection.ops.adapt_datetimefield_value(value)
    if connection.vendor == "postgresql":
        return "CAST(%s AS TIMESTAMP WITH TIME ZONE)", [adapted]
    return "%s", [adapted]


def days_between(later: str, earlier: str) -> str:
    """SQL for ``later - earlier`` in days, as a float.

    SQLite: julianday() holds whole milliseconds as a fraction of a day;
    differences are taken on those integers, so times a whole number of
    days apart are exactly that many days apart (as in numpy on
    microseconds), not 30.000000000466.
    """
    if connection.vendor == "postgresql":
        return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"
    return (f"((ROUND(julianday({later}) * 86400000.0) "
            f"- ROUND(julianday({earlier}) * 86400000.0)) / 86400000.0)")
