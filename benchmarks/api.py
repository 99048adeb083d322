"""Print the API's throughput against bare baselines on the same machine.

    python -m benchmarks.api [--customers 20000] [--requests 2000] [--concurrency 4]
                             [--rounds 3] [--batches 5]            (from the repo root)

Needs PostgreSQL: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/campaign_bench_api) is DROPPED and recreated.

1. Single-customer assignment: POST /api/v1/experiments/<key>/assignments/
   under gunicorn with 2 sync workers, ``--concurrency`` clients, against a
   bare Django view on the same server that makes the same assign_customer
   call without the API layer (benchmarks/api_urls.py). Requests per second
   and p99 latency; target: API/bare throughput >= 0.7.
2. Bulk event ingestion: POST /api/v1/events/bulk/ with 10,000 events per
   request (JSON encoded beforehand), against psycopg COPY of the same rows
   (already resolved to database values) into the same table. Rows per
   second; target: API/COPY >= 0.5.

Assignment figures are medians over ``--rounds`` rounds, the sides taking
turns within a round; ingestion runs each batch both ways back to back and
reports the median of the paired ratios. Both keep bursts of load from
elsewhere on the machine from landing on one side only. The load generator
shares the machine's cores with the server, the same way for both sides.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/campaign_bench_api"
BATCH_ROWS = 10_000


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="true")
    import django

    django.setup()


def seed(customers: int) -> tuple[str, list[str], dict[str, int]]:
    """Customers, a write key and two identical running experiments; returns the key."""
    from django.core.management import call_command
    from django.utils import timezone

    from core.api_keys import api_key_create
    from core.db.bulk import rows_insert
    from experiments.models import Experiment
    from experiments.services import ArmSpec, MetricSpec, experiment_create, experiment_transition
    from marketing.attribute_history import customer_versions_open
    from marketing.models import Customer
    from marketing.services import campaign_create

    call_command("migrate", verbosity=0)
    now = timezone.now()
    rows_insert(Customer, ["external_id", "attributes", "marketing_consent", "created_at",
                           "updated_at"],
                ((f"crm-{i:06d}", {}, True, now, now) for i in range(customers)))
    campaign = campaign_create(key="bench", name="Bench", channel="email",
                               cost_per_contact="0.05", value_per_conversion="40")
    for key in ("bench_api", "bench_bare"):
        experiment = experiment_create(
            campaign=campaign, key=key, name=key, salt="bench-salt",
            arms=[ArmSpec("control", 1, is_control=True, contacts_customer=False),
                  ArmSpec("email", 1)],
            metrics=[MetricSpec("purchase", "purchase", "converted", role="primary")])
        experiment_transition(experiment=experiment, to=Experiment.Status.RUNNING)
    _, raw_key = api_key_create(name="bench", scope="write")
    ids = dict(Customer.objects.values_list("external_id", "id"))
    customer_versions_open(((pk, {}, True) for pk in ids.values()), at=now, first=True)
    return raw_key, sorted(ids), ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, workers: int = 2) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "benchmarks.api_settings",
           "DEBUG": "false", "DJANGO_SECRET_KEY": "benchmark-only-" + "x" * 40,
           "PRIVACY_ID_KEY": "benchmark-only-pseudonyms-" + "y" * 40,
           "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "ERROR", "SECURE_SSL_REDIRECT": "false",
           "API_THROTTLE_READ": "1000000/s", "API_THROTTLE_WRITE": "1000000/s",
           "API_THROTTLE_BULK": "1000000/s"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "300", "--log-level", "warning"],
        cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            if request(port, "GET", "/bench/hello/", None, {})[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start within 60 s")


def request(port: int, method: str, path: str, body: bytes | None, headers: dict):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client(job: tuple) -> tuple[list[float], int]:
    port, path, bodies, headers = job
    latencies, failures = [], 0
    for body in bodies:
        start = time.perf_counter()
        status, _ = request(port, "POST", path, body, headers)
        latencies.append(time.perf_counter() - start)
        failures += status != 200
    return latencies, failures


def load(pool, port: int, path: str, bodies: list[bytes], headers: dict, concurrency: int):
    """Send the bodies from ``concurrency`` clients; (requests/s, p99 seconds)."""
    jobs = [(port, path, bodies[i::concurrency], headers) for i in range(concurrency)]
    start = time.perf_counter()
    results = pool.map(_client, jobs)
    elapsed = time.perf_counter() - start
    latencies = sorted(x for lat, _ in results for x in lat)
    failures = sum(f for _, f in results)
    if failures:
        raise SystemExit(f"{failures} requests to {path} failed")
    return len(bodies) / elapsed, latencies[int(0.99 * (len(latencies) - 1))]


def bench_assignment(pool, port, key, customers, args) -> dict:
    """{phase: {side: (requests/s, p99)}} for first calls (each creates the assignment)
    and repeat calls (the stored assignment is read back)."""
    json_headers = {"Content-Type": "application/json"}
    api_headers = {**json_headers, "Authorization": f"Api-Key {key}"}
    sides = {
        "api": ("/api/v1/experiments/bench_api/assignments/", api_headers),
        "bare": ("/bench/assign/bench_bare/", json_headers),
        "hello": ("/bench/hello/", json_headers),
    }
    rng = random.Random(1)
    pool_ids = rng.sample(customers, args.requests * (args.rounds + 1))
    batches = [[json.dumps({"customer": c}).encode() for c in pool_ids[i::args.rounds + 1]]
               for i in range(args.rounds + 1)]
    for path, headers in sides.values():  # warm up connections and caches
        load(pool, port, path, batches[-1][:200], headers, args.concurrency)
    figures = {phase: {name: [] for name in sides} for phase in ("first", "repeat")}
    for round_ in range(args.rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        # Each side has its own experiment, so both assign the same customers.
        for phase in ("first", "repeat"):
            for name in order:
                path, headers = sides[name]
                figures[phase][name].append(
                    load(pool, port, path, batches[round_], headers, args.concurrency))
    return {phase: {name: (statistics.median(r for r, _ in runs),
                           statistics.median(p for _, p in runs))
                    for name, runs in sides_.items()}
            for phase, sides_ in figures.items()}


def bench_ingestion(port, key, customers, ids, args, url) -> dict:
    """Median rows/s of each side and the median of the paired per-batch ratios.

    Each batch of 10,000 rows goes in both ways back to back (in alternating
    order), so a burst of load from elsewhere on the machine hits a pair,
    not one side.
    """
    import psycopg
    from psycopg.types.json import Jsonb

    rng = random.Random(2)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    columns = ("customer_id, kind, occurred_at, value, properties, source, idempotency_key, "
               "received_at")
    headers = {"Content-Type": "application/json", "Authorization": f"Api-Key {key}"}
    api_rates, copy_rates, ratios = [], [], []
    with psycopg.connect(url) as conn:
        for batch_no in range(args.rounds * args.batches):
            rows = []
            for i in range(BATCH_ROWS):
                kind = "purchase" if rng.random() < 0.3 else "visit"
                rows.append({
                    "customer": rng.choice(customers), "kind": kind,
                    "occurred_at": (start + timedelta(seconds=rng.randrange(10**7))).isoformat(),
                    "value": round(rng.uniform(5, 120), 2) if kind == "purchase" else 0.0,
                    "properties": {"sku": f"A-{rng.randrange(500)}", "channel": "web"},
                    "idempotency_key": f"b{batch_no}-{i}",
                })
            body = json.dumps({"source": "bench-api", "events": rows}).encode()
            received = datetime.now(UTC)
            tuples = [(ids[r["customer"]], r["kind"], datetime.fromisoformat(r["occurred_at"]),
                       r["value"], Jsonb(r["properties"]), "bench-copy", r["idempotency_key"],
                       received) for r in rows]
            if batch_no % 2 == 0:
                api = ingest_via_api(port, body, headers)
                copy = ingest_via_copy(conn, tuples, columns)
            else:
                copy = ingest_via_copy(conn, tuples, columns)
                api = ingest_via_api(port, body, headers)
            api_rates.append(BATCH_ROWS / api)
            copy_rates.append(BATCH_ROWS / copy)
            ratios.append(copy / api)
    return {"api": statistics.median(api_rates), "copy": statistics.median(copy_rates),
            "ratio": statistics.median(ratios)}


def ingest_via_api(port: int, body: bytes, headers: dict) -> float:
    """Seconds to send one bulk request and get its answer."""
    start = time.perf_counter()
    status, answer = request(port, "POST", "/api/v1/events/bulk/", body, headers)
    if status != 200:
        raise SystemExit(f"bulk ingestion failed: {status} {answer[:300]!r}")
    return time.perf_counter() - start


def ingest_via_copy(conn, rows: list[tuple], columns: str) -> float:
    """Seconds to COPY the rows and commit."""
    start = time.perf_counter()
    with conn.cursor() as cur, cur.copy(f"COPY marketing_event ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.commit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=1_000,
                        help="per side, phase and round")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=5,
                        help="bulk requests of 10,000 events per round")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)

    recreate_database(url)
    setup_django(url)
    key, customers, ids = seed(args.customers)
    from django.db import connections

    connections.close_all()
    port = free_port()
    server = start_server(url, port)
    try:
        with multiprocessing.get_context("fork").Pool(args.concurrency) as pool:
            assignment = bench_assignment(pool, port, key, customers, args)
        ingestion = bench_ingestion(port, key, customers, ids, args, url)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"Single-customer assignment, gunicorn 2 sync workers, {args.concurrency} clients, "
          f"{args.requests} requests x {args.rounds} rounds (median):")
    for phase, title in (("first", "first call, creates the assignment"),
                         ("repeat", "repeat call, reads the stored assignment")):
        api_rps, api_p99 = assignment[phase]["api"]
        bare_rps, bare_p99 = assignment[phase]["bare"]
        ratio = api_rps / bare_rps
        print(f"  {title}:")
        print(f"    API  POST /api/v1/experiments/<key>/assignments/ {api_rps:7.0f} req/s  "
              f"p99 {api_p99 * 1000:6.1f} ms")
        print(f"    bare Django view, same service call              {bare_rps:7.0f} req/s  "
              f"p99 {bare_p99 * 1000:6.1f} ms")
        print(f"    ratio API / bare: throughput {ratio:.2f} (target >= 0.7), latency "
              f"{bare_p99 / api_p99:.2f} (bare p99 / API p99)  "
              f"{'OK' if ratio >= 0.7 else 'BELOW TARGET'}")
    hello_rps, hello_p99 = assignment["first"]["hello"]
    print(f"  for scale, a Django view returning constant JSON:  {hello_rps:7.0f} req/s  "
          f"p99 {hello_p99 * 1000:6.1f} ms")
    rows_ratio = ingestion["ratio"]
    print(f"Bulk event ingestion, {args.rounds * args.batches} batches of {BATCH_ROWS:,} rows "
          "(median):")
    print(f"  API  POST /api/v1/events/bulk/   {ingestion['api']:9.0f} rows/s")
    print(f"  psycopg COPY of the same rows    {ingestion['copy']:9.0f} rows/s")
    print(f"  ratio API / COPY (median of paired batches): {rows_ratio:.2f} (target >= 0.5)  "
          f"{'OK' if rows_ratio >= 0.5 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
