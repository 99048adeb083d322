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
    secret's SHA-256. The row is cached for API_KEY_CACHE_SECONDS (so a
    deactivated key stops working within that time) and ``last_used_at`` is
    written at most once a minute: a busy integration costs no query here.
    """
    prefix, _, secret = raw_key.partition(".")
    if not secret or len(prefix) > ApiKey._meta.get_field("prefix").max_length or \
            not prefix.isalnum():
        return None
    cache_key = f"api-key:{prefix}"
    key = cache.get(cache_key)
    if key is None:
        key = ApiKey.objects.filter(prefix=prefix, is_active=True).order_by().first()
        if key is None:
            return None
        cache.set(cache_key, key, settings.API_KEY_CACHE_SECONDS)
    if not hmac.compare_digest(key.secret_hash, _api_secret_hash(secret)):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > API_KEY_USE_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        cache.set(cache_key, key, settings.API_KEY_CACHE_SECONDS)
    return key


API_KEY_USE_RESOLUTION = timedelta(minutes=1)


def api_key_deactivate(*, key: ApiKey) -> ApiKey:
    """Revoke a key now, in this process's cache too (others: within the cache time)."""
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    cache.delete(f"api-key:{key.prefix}")
    key.is_active = False
    return key
