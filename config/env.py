"""Strict readers for settings taken from the environment.

A bad value stops start-up with ImproperlyConfigured naming the variable,
instead of surfacing later as a confusing runtime error.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value != value or (minimum is not None and value < minimum):  # NaN, or too small
        raise ImproperlyConfigured(f"{name} must be a number >= {minimum}, got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str, *, base_dir: os.PathLike | str) -> dict:
    """Turn DATABASE_URL into a Django DATABASES entry.

    Accepted: ``sqlite:///relative/or/absolute/path.sqlite3`` and
    ``postgres://user:password@host:port/name?option=value`` (psycopg 3).
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.sqlite3 or sqlite:////absolute/path.sqlite3
        path = unquote(url.split(":///", 1)[1]) if ":///" in url else ""
        if not path:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no SQLite file")
        if not os.path.isabs(path):
            path = os.path.join(os.fspath(base_dir), path)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # The dev server and a worker write at once: WAL lets readers run
            # beside the writer, BEGIN IMMEDIATE takes the write lock up front
            # (a deferred transaction that reads then writes cannot wait for
            # the lock, it fails at once with "database is locked"), and the
            # timeout makes a second writer wait up to 30 s instead of failing.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parsed.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no database")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "OPTIONS": dict(parse_qsl(parsed.query)),
            "CONN_MAX_AGE": 60,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use sqlite:// or postgres://)"
    )
