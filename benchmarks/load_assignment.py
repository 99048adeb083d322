"""A bounded load test of live CRM flows: assignment and ingestion, 32 clients, loopback only.

    python -m benchmarks.load_assignment [--seconds 60] [--connections 32]
                                         [--customers 200000] [--workers 2]
                                         (from the repo root, as root or with wrk installed)

Needs PostgreSQL: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/campaign_h16_load) is DROPPED and recreated,
then seeded by benchmarks/api.py's ``seed`` (customers, a write key, two
identical running experiments). The server is benchmarks/api.py's: gunicorn
with ``--workers`` sync workers, ``DEBUG=false``, bound to 127.0.0.1, with
the bare views of benchmarks/api_urls.py. The load comes from ``wrk``
(Debian's package, installed here with apt-get when missing), ``--connections``
connections on 2 threads, each phase ``--seconds`` long:

1. ``hello``: a Django view returning constant JSON (the floor of any request);
2. ``bare assign``: the same assign_external_id call with no API layer;
3. ``API assign``: POST /api/v1/experiments/<key>/assignments/, each
   connection walking its own slice of the customers, so most calls are a
   customer's first (the insert) and the rest repeats (the stored row);
4. ``API ingest``: POST /api/v1/events/bulk/ with 50 events per request,
   each with its own idempotency key, from ``--connections`` Python threads
   (not wrk: wrk drops the answers in flight when its time is up, and the
   check needs every answer's ``created`` count).

It prints requests/s, p50 and p99 per phase (target for API assign: at
least 1,000 requests/s with p99 under 50 ms) and then checks, in the
database: zero 5xx answers; event rows equal to the events the answers
accepted; one assignment per customer, each on the arm the deterministic
hash gives (so every answer, first or repeat, named that arm).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.api import free_port, recreate_database, seed, setup_django, start_server

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/campaign_h16_load"
EVENTS_PER_REQUEST = 50
TARGET_RPS, TARGET_P99_MS = 1_000, 50.0

# One Lua state per wrk thread: ``tid`` is set by setup(); each connection's
# requests walk customers tid, tid + threads, ... so no two threads share one.
# response() counts 5xx; done() adds the threads' counts and prints one JSON line.
LUA = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  mode, path, key = args[1], args[2], args[3]
  nthreads, customers, per = tonumber(args[4]), tonumber(args[5]), tonumber(args[6])
  n, five, created = 0, 0, 0
  headers = {["Content-Type"] = "application/json"}
  if key ~= "" then headers["Authorization"] = "Api-Key " .. key end
end
function request()
  local i = (n * nthreads + tid) % customers
  n = n + 1
  local body
  if mode == "assign" then
    body = string.format('{"customer": "crm-%06d"}', i)
  else
    return wrk.format("GET", path, headers)
  end
  return wrk.format("POST", path, headers, body)
end
function response(status, hdrs, body)
  if status >= 500 then five = five + 1 end
end
function done(summary, latency, requests)
  local fives, made = 0, 0
  for _, t in ipairs(threads) do
    fives = fives + t:get("five")
    made = made + t:get("created")
  end
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "seconds": %.3f, "non2xx": %d, ' ..
    '"fivexx": %d, "socket_errors": %d, "created": %d, "p50_ms": %.2f, "p99_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, e.status, fives,
    e.connect + e.read + e.write + e.timeout, made,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                   stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or "wrk"


def run_wrk(wrk: str, script: Path, port: int, *, mode: str, path: str, key: str,
            connections: int, seconds: int, customers: int) -> dict:
    threads = 2
    out = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
         "-s", str(script), f"http://127.0.0.1:{port}{path}", "--", mode, path, key,
         str(threads), str(customers), str(EVENTS_PER_REQUEST)],
        check=True, capture_output=True, text=True).stdout
    found = re.search(r"^RESULT (.*)$", out, re.M)
    if not found:
        raise SystemExit(f"wrk printed no result:\n{out}")
    result = json.loads(found.group(1))
    result["rps"] = result["requests"] / result["seconds"]
    return result


def ingest_threads(port: int, key: str, *, connections: int, seconds: int,
                   customers: int) -> dict:
    """Bulk event requests from ``connections`` threads until ``seconds`` pass; every answer
    is awaited, so ``created`` counts every event the server accepted."""
    import http.client
    import threading
    import time

    headers = {"Content-Type": "application/json", "Authorization": f"Api-Key {key}"}
    lock = threading.Lock()
    totals = {"requests": 0, "non2xx": 0, "fivexx": 0, "socket_errors": 0, "created": 0}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    def client(tid: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        n = 0
        while time.monotonic() < deadline:
            rows = [{"customer": f"crm-{(tid * 7919 + n * EVENTS_PER_REQUEST + j) % customers:06d}",
                     "kind": "visit", "occurred_at": "2026-06-01T12:00:00Z",
                     "properties": {"page": f"p{j}"}, "idempotency_key": f"load-{tid}-{n}-{j}"}
                    for j in range(EVENTS_PER_REQUEST)]
            body = json.dumps({"source": "load", "events": rows}).encode()
            n += 1
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/events/bulk/", body, headers)
                response = conn.getresponse()
                answer = response.read()
            except OSError:
                with lock:
                    totals["socket_errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            took = time.perf_counter() - started
            with lock:
                totals["requests"] += 1
                latencies.append(took)
                totals["non2xx"] += not 200 <= response.status < 300
                totals["fivexx"] += response.status >= 500
                if response.status == 200:
                    totals["created"] += json.loads(answer)["created"]
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {**totals, "seconds": elapsed, "rps": totals["requests"] / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
            "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else 0.0}


def database_checks(customers: int, created: int) -> dict:
    """Rows against answers: events stored, assignments per customer, arms against the hash."""
    from django.db.models import Count

    from experiments.assignment_rules import ExperimentState, assignment_decide
    from experiments.models import Assignment, Experiment
    from marketing.models import Event

    experiment = Experiment.objects.get(key="bench_api")
    arms = list(experiment.arms.order_by("id"))
    rows = list(Assignment.objects.filter(experiment=experiment)
                .values_list("customer__external_id", "arm_id"))
    state = ExperimentState(status=experiment.status, running=True, salt=experiment.salt,
                            traffic_fraction=experiment.traffic_fraction,
                            weights=tuple(a.weight for a in arms), any_arm_contacts=True,
                            segment_key="", layer="")
    decided = assignment_decide(
        state=state, external_ids=[e for e, _ in rows], consent=[True] * len(rows),
        stored_arm=[-1] * len(rows), eligible=[True] * len(rows), other_layer=[False] * len(rows))
    off_hash = sum(arms[i].id != arm_id for i, (_, arm_id) in zip(decided.arm, rows,
                                                                  strict=True))
    doubled = (Assignment.objects.values("experiment_id", "customer_id")
               .annotate(n=Count("id")).filter(n__gt=1).count())
    return {"assignments": len(rows), "off_hash": off_hash, "doubled": doubled,
            "event_rows": Event.objects.filter(source="load").count(), "events_accepted": created}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--phases", default="hello,bare,api,ingest")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    wrk = wrk_path()

    recreate_database(url)
    setup_django(url)
    key, _, _ = seed(args.customers)
    from django.db import connections

    connections.close_all()
    port = free_port()
    server = start_server(url, port, workers=args.workers)
    phases = {
        "hello": ("GET /bench/hello/ (constant JSON)", "get", "/bench/hello/", ""),
        "bare": ("bare view, same assign_external_id call", "assign", "/bench/assign/bench_bare/",
                 ""),
        "api": ("API POST /experiments/<key>/assignments/", "assign",
                "/api/v1/experiments/bench_api/assignments/", key),
        "ingest": (f"API POST /events/bulk/ ({EVENTS_PER_REQUEST} events)", "ingest",
                   "/api/v1/events/bulk/", key),
    }
    results = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "load.lua"
            script.write_text(LUA)
            for name in args.phases.split(","):
                _, mode, path, api_key = phases[name]
                if mode == "ingest":
                    results[name] = ingest_threads(port, key, connections=args.connections,
                                                   seconds=args.seconds,
                                                   customers=args.customers)
                    continue
                results[name] = run_wrk(wrk, script, port, mode=mode, path=path, key=api_key,
                                        connections=args.connections, seconds=args.seconds,
                                        customers=args.customers)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"gunicorn {args.workers} sync workers, DEBUG=false, PostgreSQL; wrk 2 threads, "
          f"{args.connections} connections, {args.seconds} s per phase, loopback")
    print(f"{'phase':<45} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'non-2xx':>7} {'5xx':>4} {'sock err':>8}")
    for name, r in results.items():
        print(f"{phases[name][0]:<45} {r['requests']:>9,} {r['rps']:>8.0f} {r['p50_ms']:>7.1f} "
              f"{r['p99_ms']:>7.1f} {r['non2xx']:>7} {r['fivexx']:>4} {r['socket_errors']:>8}")
    if "api" in results:
        api = results["api"]
        ok = api["rps"] >= TARGET_RPS and api["p99_ms"] < TARGET_P99_MS
        print(f"API assign against the target ({TARGET_RPS} req/s, p99 < {TARGET_P99_MS:.0f} ms):"
              f" {'MET' if ok else 'NOT MET'}")
    checks = database_checks(args.customers, results.get("ingest", {}).get("created", 0))
    fivexx = sum(r["fivexx"] for r in results.values())
    print(f"checks: 5xx answers {fivexx}; event rows {checks['event_rows']:,} = accepted "
          f"{checks['events_accepted']:,}: {checks['event_rows'] == checks['events_accepted']}; "
          f"assignments {checks['assignments']:,}, customers with two rows {checks['doubled']}, "
          f"rows off the hash's arm {checks['off_hash']}")
    failed = (fivexx or checks["event_rows"] != checks["events_accepted"] or checks["doubled"]
              or checks["off_hash"])
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
