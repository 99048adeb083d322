"""Lookups for long lists of values: one array parameter instead of thousands."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import CharField, Lookup, QuerySet


@CharField.register_lookup
class AnyOf(Lookup):
    """``field__any_of=[...]``: ``field = ANY(%s)`` with the list as one array parameter.

    On PostgreSQL ``__in`` with 10,000 values builds a query with 10,000
    placeholders, and the driver spends longer assembling it than the
    database spends answering. Elsewhere it is a plain IN.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            raise EmptyResultSet
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*params, values]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*params, *values]


def values_matching(queryset: QuerySet, field: str, values: Sequence[str]) -> Iterator:
    """Iterate ``queryset`` (a values_list) restricted to ``field`` in ``values``.

    One query on PostgreSQL; on SQLite, which caps the parameters of a
    query, one per 5,000 values.
    """
    size = max(len(values), 1) if connection.vendor == "postgresql" else 5_000
    for start in range(0, len(values), size):
        # A frozenset, not a list: Django walks list and tuple values item by item.
        chunk = frozenset(values[start:start + size])
        yield from queryset.filter(**{f"{field}__any_of": chunk})
