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

from collections.abc import Callable, Hashable, Iterable, Sequence

from django.conf import settings

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


def small_count_public(customers: int | None) -> tuple[int | None, str]:
    """A head count as shown: (the count, "") or (None, the reason) when it is a small cell."""
    if customers is None:
        return None, ""
    threshold = privacy_min_cell()
    if customers < threshold:
        return None, SUPPRESSED_REASON.format(n=threshold)
    return customers, ""
