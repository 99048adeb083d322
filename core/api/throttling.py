"""Request rates per client: each API key, staff user or (unauthenticated) address.

Three buckets, configured in settings (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``,
from API_THROTTLE_READ / _WRITE / _BULK): ``read`` for safe methods, ``write``
for the rest, and ``bulk`` for views that set ``throttle_scope = "bulk"``
(a bulk request counts once, not once per row).

A fixed window counted with ``cache.add`` + ``cache.incr``: two constant-time
cache operations per request, where DRF's sliding window stores and
rewrites the time of every request in the window. Counts live in Django's
cache: per process with the default local-memory cache, shared by all
processes when CACHES points at Redis.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from core.models import ApiKey

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_parse(rate: str) -> tuple[int, int]:
    """'120/min' -> (120, 60): requests per window of seconds."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


class ClientRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", None) or (
            "read" if request.method in SAFE_METHODS else "write")
        # Read per request, not at import, so settings overrides apply.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        if rate is None:
            return True
        limit, window = rate_parse(rate)
        now = time.time()
        start = int(now // window * window)
        self.retry_after = start + window - now
        key = f"api-throttle:{scope}:{self.client(request)}:{start}"
        cache.add(key, 0, window + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, window + 1)
            count = 1
        return count <= limit

    def client(self, request) -> str:
        if isinstance(request.auth, ApiKey):
            return f"key{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user{request.user.pk}"
        return f"ip{self.get_ident(request)}"

    def wait(self) -> float:
        return self.retry_after
