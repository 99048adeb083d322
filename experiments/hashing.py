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
from collections.abc import Sequence

_SCALE = float(2**64)


def unit_hash(salt: str, purpose: str, customer_external_id: str) -> float:
    digest = hashlib.sha256(f"{salt}:{purpose}:{customer_external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def in_traffic(salt: str, customer_external_id: str, traffic_fraction: float) -> bool:
    return unit_hash(salt, "traffic", customer_external_id) < traffic_fraction


def choose_arm(salt: str, customer_external_id: str, weights: Sequence[float]) -> int:
    """Index of the chosen arm; weights need not sum to one."""
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError("arm weights must be non-negative with a positive sum")
    u = unit_hash(salt, "arm", customer_external_id) * total
    cumulative = 0.0
    for index, weight in enumerate(weights):
        cumulative += weight
        if u < cumulative:
            return index
    # Only reachable through float rounding at the very top of the range.
    return max(i for i, w in enumerate(weights) if w > 0)
