import numpy as np

from models_dl.synthetic import FEATURE_COLUMNS, make_campaign_population


def test_same_seed_gives_identical_arrays():
    a = make_campaign_population(2000, seed=5)
    b = make_campaign_population(2000, seed=5)
    for name in (*FEATURE_COLUMNS, "treatment", "conversion", "revenue", "conversion_probability"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.conversion_probability, make_campaign_population(2000, 6).conversion_probability)


def test_features_look_like_customers():
    pop = make_campaign_population(20_000, seed=0)
    frame = pop.feature_frame()
    assert list(frame.columns) == list(FEATURE_COLUMNS)
    assert pop.age.min() >= 18 and pop.age.max() <= 85
    assert set(pop.channel) == {"web", "phone", "multichannel"}
    assert ((pop.email_engagement >= 0) & (pop.email_engagement <= 1)).all()
    assert (pop.purchases_365d >= pop.purchases_90d).all()
    assert (pop.revenue_365d >= pop.revenue_90d).all()
    assert (pop.email_opens_365d <= pop.emails_received_365d).all()
    no_purchase = pop.purchases_365d == 0
    assert np.isnan(pop.days_since_last_purchase[no_purchase]).all()
    assert (pop.days_since_last_purchase[~no_purchase] <= 365).all()


def test_assignment_outcomes_and_truth_are_consistent():
    pop = make_campaign_population(60_000, seed=1, n_treatments=2)
    shares = np.bincount(pop.treatment) / pop.n
    np.testing.assert_allclose(shares, 1 / 3, atol=0.01)
    assert pop.conversion_probability.shape == (pop.n, 3)
    assert pop.true_conversion_uplift.shape == (pop.n, 2)
    # observed conversion rates match the potential-outcome probabilities of each arm
    for arm in range(3):
        rows = pop.treatment == arm
        assert abs(pop.conversion[rows].mean() - pop.conversion_probability[rows, arm].mean()) < 0.01
    assert (pop.revenue[pop.conversion == 0] == 0).all()
    assert (pop.revenue[pop.conversion == 1] > 0).all()
    rows = pop.treatment == 1
    assert abs(pop.revenue[rows].mean() - pop.expected_revenue[rows, 1].mean()) < 0.1 * pop.revenue[rows].mean()


def test_effects_are_heterogeneous_with_a_group_contact_hurts():
    pop = make_campaign_population(50_000, seed=2)
    uplift = pop.true_conversion_uplift
    assert uplift.mean() > 0.01  # contact helps on average
    assert uplift.std(axis=0).min() > 0.02
    # low engagement + recent heavy buyers: the e-mail annoys them
    annoyed = (pop.email_engagement < 0.15) & (pop.purchases_90d >= 3)
    assert annoyed.sum() > 100
    assert (uplift[annoyed, 0] < 0).mean() > 0.95
    assert pop.hurt_by_contact.any()


def test_it_is_fast_enough_for_the_demo_seed():
    import time

    started = time.perf_counter()
    make_campaign_population(100_000, seed=0, n_treatments=3)
    assert time.perf_counter() - started < 5
