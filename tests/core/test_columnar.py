"""columns_fetch: query results as exact numpy columns on both backends."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection

from core.db.columnar import columns_fetch
from marketing.models import Event
from tests.factories import customer_make, event_make

pytestmark = pytest.mark.django_db
TABLE = connection.ops.quote_name(Event._meta.db_table)


def test_columns_are_exact_and_ordered_on_request():
    people = [customer_make() for _ in range(3)]
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for i, person in enumerate(reversed(people)):
        event_make(person, "purchase", base + timedelta(microseconds=i), value=0.1 * (i + 1))
    sql = f"SELECT CAST(e.customer_id AS BIGINT), e.occurred_at, e.value FROM {TABLE} e"
    ids, at, value = columns_fetch(sql, [], "itf", ordered=True)
    assert ids.tolist() == sorted(p.id for p in people) and ids.dtype == np.int64
    epoch_us = (base - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert at.tolist() == [epoch_us + 2, epoch_us + 1, epoch_us]  # to the microsecond
    assert value.tolist() == [0.1 * 3, 0.1 * 2, 0.1]


def test_an_empty_result_gives_empty_columns():
    ids, value = columns_fetch(f"SELECT CAST(e.customer_id AS BIGINT), e.value FROM {TABLE} e",
                               [], "if")
    assert ids.size == value.size == 0


def test_a_null_float_is_nan_and_a_null_integer_is_refused_not_dropped():
    event_make(customer_make(), "visit", datetime(2026, 3, 1, tzinfo=UTC))
    sql = (f"SELECT CAST(e.customer_id AS BIGINT), CAST(NULL AS DOUBLE PRECISION), "
           f"CAST(NULL AS TEXT), e.kind FROM {TABLE} e")
    _, missing, no_text, kind = columns_fetch(sql, [], "ifss")
    assert np.isnan(missing).all() and no_text.tolist() == [None] and kind.tolist() == ["visit"]
    with pytest.raises(ValueError, match="NULL"):
        columns_fetch(f"SELECT CAST(NULL AS BIGINT) FROM {TABLE} e", [], "i")
