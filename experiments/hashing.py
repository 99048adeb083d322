"""Deterministic arm choice: a pure function of (salt, customer id, weights).

    u = int.from_bytes(sha256(f"{salt}:{purpose}:{customer_external_id}")[:8]) / 2**64

``u`` is uniform on [0, 1). The customer is in the traffic sample when
``u_traffic < traffic_fraction``; the arm is the first whose cumulative
normalised weight exceeds ``u_arm``. The CRM id (not the database key) is
hashed so any worker, any database and the CRM itself get the same answer.
Separate purposes keep the traffic draw independent of the arm draw, so
raising the traffic fraction keeps earlier customers in their arms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

_SCALE = float(2**64)


def unit_hash(salt: str, purpose: str, customer_external_id: str) -> float:
    digest = hashlib.sha256(f"{salt}:{purpose}:{customer_external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def in_traffic(salt: str, customer_external_id: str, traffic_fraction: float) -> bool:
    return unit_hash(salt, "traffic", customer_external_id) < traffic_fraction


def _total(weights: Sequence[float]) -> float:
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError("arm weights must be non-negative with a positive sum")
    return total


def choose_arm(salt: str, customer_external_id: str, weights: Sequence[float]) -> int:
    """Index of the chosen arm; weights need not sum to one."""
    total = _total(weights)
    u = unit_hash(salt, "arm", customer_external_id) * total
    cumulative = 0.0
    for index, weight in enumerate(weights):
        cumulative += weight
        if u < cumulative:
            return index
    # Only reachable through float rounding at the very top of the range.
    return max(i for i, w in enumerate(weights) if w > 0)


def unit_hashes(salt: str, purpose: str, customer_external_ids: Iterable[str]) -> np.ndarray:
    """``unit_hash`` for many ids at once: the same numbers, as a float64 array.

    The first 8 digest bytes of every id are read together as big-endian
    uint64 and converted in one step (``_units``); only sha256 runs per id.
    """
    head = f"{salt}:{purpose}:".encode()
    sha256 = hashlib.sha256
    prefixes = b"".join(sha256(head + e.encode()).digest()[:8] for e in customer_external_ids)
    return _units(prefixes)


def _units(prefixes: bytes) -> np.ndarray:
    # uint64 -> float64 rounds to nearest like Python's int -> float, and
    # dividing by a power of two is exact: the same u as unit_hash.
    return np.frombuffer(prefixes, dtype=">u8").astype(np.float64) / _SCALE


def in_traffic_many(salt: str, customer_external_ids: Iterable[str],
                    traffic_fraction: float) -> np.ndarray:
    """``in_traffic`` for many ids: a boolean array."""
    return unit_hashes(salt, "traffic", customer_external_ids) < traffic_fraction


def choose_arms(salt: str, customer_external_ids: Iterable[str],
                weights: Sequence[float]) -> np.ndarray:
    """``choose_arm`` for many ids: an int64 array of arm indexes.

    The cumulative weights are summed in Python in the same order as
    ``choose_arm``, so the boundaries are the same floats; the arm is the
    first whose cumulative weight exceeds u, i.e. ``searchsorted(..., "right")``.
    """
    total = _total(weights)
    cumulative, running = [], 0.0
    for weight in weights:
        running += weight
        cumulative.append(running)
    u = unit_hashes(salt, "arm", customer_external_ids) * total
    chosen = np.searchsorted(np.asarray(cumulative, dtype=np.float64), u, side="right")
    chosen[chosen == len(weights)] = max(i for i, w in enumerate(weights) if w > 0)
    return chosen.astype(np.int64)
