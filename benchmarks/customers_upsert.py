"""Bulk customer upserts: 10,000-row requests that create, then merge new attributes.

    BENCH_DATABASE_URL=postgres://... python benchmarks/customers_upsert.py [--rows 10000] [--rounds 3]

Times marketing.services.customers_upsert_bulk (the service behind
POST /api/v1/customers/bulk/) on a throw-away set of customers: one request
creating ``--rows`` customers (COPY), then ``--rounds`` requests that each
add one attribute to every one of them (the merge in the database,
customer_attributes_merge, with the history's versions copied alongside),
and one request that changes nothing. Prints seconds and rows per second.
The customers and their history are deleted afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench_setup import django_setup

PREFIX = "bench-upsert-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = django_setup()

    from marketing.models import Customer, CustomerAttribute
    from marketing.services import customers_upsert_bulk

    keys = [f"bench_a{i}" for i in range(args.rounds + 1)]
    for key in keys:
        CustomerAttribute.objects.get_or_create(key=key,
                                                defaults={"kind": CustomerAttribute.Kind.NUMERIC})
    Customer.objects.filter(external_id__startswith=PREFIX).delete()
    ids = [f"{PREFIX}{i:07d}" for i in range(args.rows)]

    def timed(rows) -> tuple[float, object]:
        started = time.perf_counter()
        result = customers_upsert_bulk(rows)
        return time.perf_counter() - started, result

    try:
        seconds, result = timed([{"external_id": e, "attributes": {keys[0]: 1}} for e in ids])
        assert result.created == args.rows, result
        print(f"database: {url.rsplit('/', 1)[-1]}; rows per request: {args.rows}")
        print(f"create:  {seconds:6.2f} s  {args.rows / seconds:9,.0f} rows/s")
        merges = []
        for round_ in range(1, args.rounds + 1):
            seconds, result = timed([{"external_id": e, "attributes": {keys[round_]: round_}}
                                     for e in ids])
            assert result.updated == args.rows, result
            merges.append(seconds)
        merge = statistics.median(merges)
        print(f"merge:   {merge:6.2f} s  {args.rows / merge:9,.0f} rows/s "
              f"(median of {args.rounds}: {', '.join(f'{s:.2f}' for s in merges)} s)")
        seconds, result = timed([{"external_id": e, "attributes": {keys[1]: 1}} for e in ids])
        assert result.unchanged == args.rows, result
        print(f"no-op:   {seconds:6.2f} s  {args.rows / seconds:9,.0f} rows/s")
        stored = Customer.objects.filter(external_id=ids[-1]).values_list("attributes", flat=True)
        assert set(stored[0]) == set(keys), stored[0]
    finally:
        Customer.objects.filter(external_id__startswith=PREFIX).delete()
        CustomerAttribute.objects.filter(key__in=keys).delete()


if __name__ == "__main__":
    main()
