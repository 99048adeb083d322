"""Request rates per client: each API key, staff user or (unauthenticated) address.

Three buckets, configured in settings (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``,
from API_THROTTLE_READ / _WRITE / _BULK): ``read`` for safe methods, ``write``
for the rest, and ``bulk`` for views that set ``throttle_scope = "bulk"``
(their rows count once per request, not per row). Counts live in Django's
cache: per process with the default local-memory cache, shared when
CACHES points at Redis.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from marketing.models import ApiKey


class ClientRateThrottle(SimpleRateThrottle):
    cache_format = "api-throttle:%(scope)s:%(ident)s"

    def __init__(self):
        # Rates are read per request (not at import) so settings overrides apply.
        pass

    def allow_request(self, request, view):
        self.scope = getattr(view, "throttle_scope", None) or (
            "read" if request.method in SAFE_METHODS else "write")
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiKey):
            ident = f"key{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user{request.user.pk}"
        else:
            ident = f"ip{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
