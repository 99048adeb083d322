"""Small-cell suppression: no figure about fewer than PRIVACY_MIN_CELL customers is shown.

A per-segment (or per-cluster) figure over a handful of customers tells
about those customers: a segment of one shows that person's outcome. Every
place that shows such figures (the admin, the API, exports) passes its
cells through ``small_cells_suppress``; totals over everyone are shown
exactly, from their own data, never rebuilt from the cells.

Primary suppression hides each cell counting fewer than the threshold.
Secondary suppression: where cells partition a population whose total is
shown (the values of one attribute, the clusters of one clustering), one
hidden cell could be recovered as the total minus the others, so when a
group has exactly one hidden cell its next smallest cell is hidden too (the
rule statistical offices apply to published tables).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence

from django.conf import settings

from core.pseudonyms import pseudonym

SUPPRESSED_REASON = "fewer than {n} customers: suppressed to protect their privacy"


def privacy_min_cell() -> int:
    return int(settings.PRIVACY_MIN_CELL)


def small_cells_suppress(
    cells: Iterable[dict], *, count: Callable[[dict], int | None], keep: Sequence[str],
    group: Callable[[dict], Hashable | None] | None = None, min_cell: int | None = None,
) -> list[dict]:
    """Copies of ``cells``; the suppressed ones keep only ``keep`` plus the reason.

    ``count(cell)``: the customers behind the cell's figures (for a cell of
    several arms, the smallest arm). ``group(cell)``: the partition the cell
    belongs to, for secondary suppression (None: the cell partitions
    nothing). A suppressed cell is ``{**{k: cell[k] for k in keep},
    "suppressed": True, "suppressed_reason": "..."}``; the others are
    returned as they are, with ``"suppressed": False``.
    """
    threshold = privacy_min_cell() if min_cell is None else min_cell
    cells = list(cells)
    counts = [count(c) for c in cells]
    hidden = [n is None or n < threshold for n in counts]
    if group is not None:
        members: dict[Hashable, list[int]] = {}
        for i, cell in enumerate(cells):
            key = group(cell)
            if key is not None:
                members.setdefault(key, []).append(i)
        for indices in members.values():
            if sum(hidden[i] for i in indices) == 1 and len(indices) > 1:
                shown = [i for i in indices if not hidden[i]]
                hidden[min(shown, key=lambda i: counts[i])] = True
    reason = SUPPRESSED_REASON.format(n=threshold)
    out = []
    for cell, hide in zip(cells, hidden, strict=True):
        if hide:
            out.append({**{k: cell[k] for k in keep if k in cell}, "suppressed": True,
                        "suppressed_reason": reason})
        else:
            out.append({**cell, "suppressed": False})
    return out


def dp_count(customers: int, *, epsilon: float, seed: str) -> int:
    """``customers`` plus Laplace noise of scale 1/epsilon, rounded, never below 0.

    A head count changes by at most 1 when one person joins or leaves
    (sensitivity 1), so Laplace(1/epsilon) noise makes it epsilon-
    differentially private (Dwork & Roth 2014, the Laplace mechanism).
    The noise is drawn from a keyed hash of ``seed`` (core.pseudonyms), not
    afresh on each read: the same count always shows the same noisy value,
    so reading it many times and averaging learns nothing more.
    """
    digest = pseudonym(seed, purpose="dp-noise")
    u = (int(digest[:15], 16) + 0.5) / 16**15 - 0.5  # uniform on (-0.5, 0.5)
    noise = -math.copysign(1.0, u) * math.log1p(-2 * abs(u)) / epsilon
    return max(0, round(customers + noise))


def small_count_public(customers: int | None, *, seed: str = "") -> tuple[int | None, str]:
    """A head count as shown: (the count, "") or (None, the reason) when it is a small cell.

    With PRIVACY_DP_EPSILON set and a ``seed`` naming the count (what was
    counted, when), the differentially private count is shown instead, with
    its epsilon in the note.
    """
    if customers is None:
        return None, ""
    epsilon = float(settings.PRIVACY_DP_EPSILON)
    if epsilon > 0 and seed:
        return dp_count(customers, epsilon=epsilon, seed=seed), (
            f"differentially private count (epsilon = {epsilon:g})")
    threshold = privacy_min_cell()
    if customers < threshold:
        return None, SUPPRESSED_REASON.format(n=threshold)
    return customers, ""
