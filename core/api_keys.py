"""API keys: create, verify (cached), deactivate."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from core.models import ApiKey


def api_key_create(*, name: str, scope: str = ApiKey.Scope.READ) -> tuple[ApiKey, str]:
    """Create a key; return it with the raw ``<prefix>.<secret>`` (shown once, never stored)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(name=name, scope=scope, prefix=prefix, secret_hash=_api_secret_hash(secret))
    key.full_clean()
    key.save()
    return key, f"{prefix}.{secret}"


def _api_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_verify(raw_key: str) -> ApiKey | None:
    """The active key matching ``<prefix>.<secret>``, or None.

    One indexed read by prefix, then a constant-time comparison of the
    secret's SHA-256. The row is cached for API_KEY_CACHE_SECONDS in Django's
    cache (Redis when configured: shared by every process) and
    ``last_used_at`` is written at most once a minute per key, across
    processes: a busy integration costs no query here. The cache is filled
    with ``add``, so a revocation's marker (api_key_deactivate) written
    meanwhile is not overwritten by a read from before it.
    """
    prefix, _, secret = raw_key.partition(".")
    if not secret or len(prefix) > ApiKey._meta.get_field("prefix").max_length or \
            not prefix.isalnum():
        return None
    cache_key = _cache_key(prefix)
    key = cache.get(cache_key)
    if key == REVOKED:
        return None
    if key is None:
        key = ApiKey.objects.filter(prefix=prefix, is_active=True).order_by().first()
        if key is None:
            return None
        cache.add(cache_key, key, settings.API_KEY_CACHE_SECONDS)
    if not hmac.compare_digest(key.secret_hash, _api_secret_hash(secret)):
        return None
    if cache.add(f"api-key-used:{key.pk}", True, int(API_KEY_USE_RESOLUTION.total_seconds())):
        now = timezone.now()
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


API_KEY_USE_RESOLUTION = timedelta(minutes=1)
REVOKED = "revoked"


def _cache_key(prefix: str) -> str:
    return f"api-key:{prefix}"


def api_key_deactivate(*, key: ApiKey) -> ApiKey:
    """Revoke a key now, in every process sharing the cache (Redis when configured).

    The cached key is replaced by a revocation marker that outlives any
    copy a concurrent verification might still add. Processes on a
    local-memory cache (no CACHE_URL/REDIS_URL) learn it within
    API_KEY_CACHE_SECONDS.
    """
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    cache.set(_cache_key(key.prefix), REVOKED, max(settings.API_KEY_CACHE_SECONDS, 1))
    key.is_active = False
    return key
