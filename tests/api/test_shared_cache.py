"""With Redis configured, rate limits and key revocation hold across processes.

Each gunicorn worker has its own cache client; here a second RedisCache
client on the same Redis plays the other process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache.backends.redis import RedisCache
from django.test import override_settings
from rest_framework.test import APIClient

from core import api_keys
from core.api import throttling
from core.api_keys import api_key_create, api_key_deactivate, api_key_verify
from tests.missing import missing

pytestmark = pytest.mark.django_db

CACHE_URL = os.environ.get("TEST_CACHE_URL", "redis://127.0.0.1:6379/14")
REDIS_CACHE = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                           "LOCATION": CACHE_URL, "KEY_PREFIX": "test"}}


@pytest.fixture
def redis_cache():
    import redis

    try:
        redis.Redis.from_url(CACHE_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError:
        missing(f"Redis at {CACHE_URL} is not reachable")
    with override_settings(CACHES=REDIS_CACHE):
        from django.core.cache import cache
        cache.clear()
        yield
        cache.clear()


def cache_backend(**env) -> subprocess.CompletedProcess:
    """The cache backend the settings choose in a fresh process with ``env``."""
    full = {k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.CACHES['default']['BACKEND'])"],
        cwd=Path(__file__).resolve().parents[2], env={**full, **env}, capture_output=True,
        text=True)


def other_process() -> RedisCache:
    return RedisCache(CACHE_URL, {"KEY_PREFIX": "test"})


def test_the_settings_choose_redis_when_a_cache_url_is_set():
    for variable in ("CACHE_URL", "REDIS_URL"):
        out = cache_backend(**{variable: "redis://127.0.0.1:6379/3"})
        assert out.stdout.strip() == "django.core.cache.backends.redis.RedisCache", out.stderr
    assert cache_backend().stdout.strip().endswith("LocMemCache")
    assert "must be a redis" in cache_backend(CACHE_URL="memcached://x").stderr


def test_a_key_revoked_in_one_process_is_refused_at_once_in_another(redis_cache, monkeypatch):
    key, raw = api_key_create(name="crm", scope="write")
    assert api_key_verify(raw) == key  # cached in Redis by this process
    monkeypatch.setattr(api_keys, "cache", other_process())
    assert api_key_verify(raw) == key  # the other process reads the same cached key
    monkeypatch.undo()
    api_key_deactivate(key=key)
    monkeypatch.setattr(api_keys, "cache", other_process())
    assert api_key_verify(raw) is None


def test_a_rate_limit_counts_requests_of_every_process(redis_cache, monkeypatch, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "read": "3/min", "write": "3/min", "bulk": "3/min"}}
    _, raw = api_key_create(name="crm", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert [client.get("/api/v1/customers/").status_code for _ in range(2)] == [200, 200]
    monkeypatch.setattr(throttling, "cache", other_process())
    assert [client.get("/api/v1/customers/").status_code for _ in range(2)] == [200, 429]
