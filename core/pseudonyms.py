"""Keyed pseudonyms: what the platform stores or logs instead of an identifier a person chose.

A CRM may use e-mail addresses as customer ids, and senders build
idempotency keys from them (``order-alice@example.com-77``). A plain hash
of such a value is no protection (anyone can hash a guessed address and
compare), so the pseudonym is HMAC-SHA256 keyed with ``PRIVACY_ID_KEY``, a
secret from the environment: only someone holding the key can link a
pseudonym to a guessed id. The same input always gives the same pseudonym,
so lookups and de-duplication work by hashing on the way in.

Rotating the key orphans every stored pseudonym (stored idempotency keys
stop matching their retries, erased customers stop matching their CRM id):
keep it as long as the data.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings


def pseudonym(value: str, *, purpose: str) -> str:
    """64 hex characters: HMAC-SHA256(key, purpose + NUL + value).

    ``purpose`` separates the uses ("customer", "idempotency"), so a
    pseudonym from one place cannot be matched against another.
    """
    keyed = _keyed(settings.PRIVACY_ID_KEY).copy()
    keyed.update(f"{purpose}\x00{value}".encode())
    return keyed.hexdigest()


@functools.lru_cache(maxsize=4)
def _keyed(key: str):
    """The HMAC state after the key: copying it costs a third of keying anew (10,000 keys a batch)."""
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def customer_pseudonym(external_id: str) -> str:
    """The name a customer goes by in logs, audit entries and after erasure."""
    return pseudonym(external_id, purpose="customer")[:32]


def idempotency_key_pseudonym(key: str) -> str:
    """What is stored for a sender's idempotency key (events, exposures)."""
    return pseudonym(key, purpose="idempotency")
