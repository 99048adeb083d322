"""core.small_cells: cells under PRIVACY_MIN_CELL lose their figures, with the reason."""

import pytest

from core.small_cells import small_cells_suppress


def cells(*sizes, group="channel"):
    return [{"label": f"v{i}", "customers": n, "mean": 1.5, "group": group}
            for i, n in enumerate(sizes)]


def suppress(rows, **kwargs):
    return small_cells_suppress(rows, count=lambda c: c["customers"], keep=("label",),
                                min_cell=20, **kwargs)


def test_a_cell_under_the_threshold_keeps_only_its_label_and_the_reason():
    out = suppress(cells(19, 20))
    assert out[0] == {"label": "v0", "suppressed": True,
                      "suppressed_reason": "fewer than 20 customers: suppressed to protect "
                                           "their privacy"}
    assert out[1] == {**cells(19, 20)[1], "suppressed": False}


def test_one_hidden_cell_of_a_partition_hides_the_next_smallest_too():
    """Otherwise the total minus the shown cells would give the hidden one back."""
    out = suppress(cells(5, 40, 30, 200), group=lambda c: c["group"])
    assert [c["suppressed"] for c in out] == [True, False, True, False]
    # Two hidden cells already protect each other; cells outside a partition never pair up.
    out = suppress(cells(5, 7, 30), group=lambda c: c["group"])
    assert [c["suppressed"] for c in out] == [True, True, False]
    assert [c["suppressed"] for c in suppress(cells(5, 40, 30))] == [True, False, False]


def test_the_threshold_comes_from_the_settings(settings):
    settings.PRIVACY_MIN_CELL = 3
    out = small_cells_suppress(cells(2, 3), count=lambda c: c["customers"], keep=("label",))
    assert [c["suppressed"] for c in out] == [True, False]


def test_a_dp_count_is_fixed_per_seed_and_unbiased():
    """The Laplace mechanism: the same count always reads the same; over many counts the
    noise averages to 0 with the spread sqrt(2)/epsilon."""
    import numpy as np

    from core.small_cells import dp_count

    assert dp_count(100, epsilon=1.0, seed="s 1") == dp_count(100, epsilon=1.0, seed="s 1")
    noise = np.array([dp_count(1000, epsilon=0.5, seed=f"s {i}") - 1000 for i in range(4000)])
    assert abs(noise.mean()) < 0.2  # 4 standard errors of sqrt(8)/sqrt(4000)
    assert noise.std() == pytest.approx(np.sqrt(2) / 0.5, rel=0.1)
    assert dp_count(0, epsilon=0.1, seed="s 2") >= 0


def test_segment_sizes_show_the_dp_count_and_its_epsilon_when_enabled(settings):
    settings.PRIVACY_DP_EPSILON = 1.0
    from core.small_cells import small_count_public

    count, note = small_count_public(3, seed="segment 1 at t")
    assert note == "differentially private count (epsilon = 1)" and count >= 0
    assert small_count_public(3) == (None, "fewer than 20 customers: suppressed to protect "
                                           "their privacy")  # nothing names the count
