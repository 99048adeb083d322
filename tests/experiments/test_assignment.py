"""Assignment: a pure hash, stored rows win, eligibility, consent, layers, batches."""

from collections import Counter

import pytest
from scipy import stats

from experiments.assignment import (
    BatchAssignmentResult,
    assign_customer,
    assign_external_id,
    assign_segment,
)
from experiments.hashing import choose_arm, in_traffic, unit_hash
from experiments.models import Arm, Assignment, Experiment
from experiments.services import ArmSpec, experiment_transition
from marketing.services import segment_create
from tests.factories import T0, attributes_declare, customer_make, experiment_make

THREE_ARMS = [ArmSpec("control", 2.0, is_control=True, contacts_customer=False),
              ArmSpec("a", 1.0), ArmSpec("b", 1.0)]


def test_the_hash_is_documented_sha256_and_uniform():
    import hashlib
    digest = hashlib.sha256(b"salt:arm:crm-42").digest()
    assert unit_hash("salt", "arm", "crm-42") == int.from_bytes(digest[:8], "big") / 2**64
    draws = [choose_arm("s", f"id{i}", [2, 1, 1]) for i in range(20_000)]
    counts = Counter(draws)
    # Chi-square goodness of fit against 50/25/25 at a generous level.
    p = stats.chisquare([counts[0], counts[1], counts[2]], [10_000, 5_000, 5_000]).pvalue
    assert p > 0.001
    assert sum(in_traffic("s", f"id{i}", 0.3) for i in range(20_000)) == pytest.approx(6_000, rel=0.05)


def test_the_same_customer_always_gets_the_same_arm():
    first = [choose_arm("salt", f"c{i}", [1, 1, 1]) for i in range(500)]
    assert first == [choose_arm("salt", f"c{i}", [1, 1, 1]) for i in range(500)]
    assert first != [choose_arm("other", f"c{i}", [1, 1, 1]) for i in range(500)]


def test_a_zero_weight_arm_is_never_chosen_and_bad_weights_are_refused():
    assert {choose_arm("s", f"c{i}", [1, 0, 1]) for i in range(2_000)} == {0, 2}
    with pytest.raises(ValueError):
        choose_arm("s", "c", [0, 0])


def running(**kwargs) -> Experiment:
    experiment = experiment_make(**kwargs)
    return experiment_transition(experiment=experiment, to=Experiment.Status.RUNNING)


@pytest.mark.django_db
def test_assign_customer_matches_the_pure_function_and_stored_rows_win():
    experiment = running(arms=THREE_ARMS)
    customer = customer_make()
    decision = assign_customer(experiment=experiment, customer=customer, now=T0)
    arms = list(experiment.arms.order_by("id"))
    assert decision.created and decision.reason == "assigned"
    assert decision.arm == arms[choose_arm(experiment.salt, customer.external_id, [2, 1, 1])]
    # Changing the weights mid-test does not move anyone already assigned.
    Arm.objects.filter(experiment=experiment).update(weight=0)
    Arm.objects.filter(pk=arms[2].pk if decision.arm != arms[2] else arms[1].pk).update(weight=1)
    again = assign_customer(experiment=experiment, customer=customer)
    assert (again.arm, again.created, again.reason) == (decision.arm, False, "already assigned")
    assert Assignment.objects.count() == 1


@pytest.mark.django_db
def test_ineligible_customers_get_a_reason_and_no_row():
    attributes_declare()
    segment = segment_create(key="web", name="Web", rule={"attr": "channel", "op": "eq",
                                                          "value": "web"})
    experiment = running(eligibility_segment=segment)
    phone = customer_make(channel="phone")
    no_consent = customer_make(channel="web", consent=False)
    decision = assign_customer(experiment=experiment, customer=phone)
    assert (decision.arm, decision.reason) == (None, "not in eligibility segment web")
    decision = assign_customer(experiment=experiment, customer=no_consent)
    assert (decision.arm, decision.reason) == (None, "no marketing consent")
    assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_a_draft_experiment_assigns_nobody():
    decision = assign_customer(experiment=experiment_make(), customer=customer_make())
    assert decision.arm is None and "draft" in decision.reason


@pytest.mark.django_db
def test_experiments_in_one_layer_never_share_a_customer():
    first, second = running(layer="email"), running(layer="email")
    elsewhere = running(layer="sms")
    customer = customer_make()
    assert assign_customer(experiment=first, customer=customer).arm is not None
    decision = assign_customer(experiment=second, customer=customer)
    assert decision.arm is None and decision.reason.startswith(f"already in experiment {first.key}")
    assert assign_customer(experiment=elsewhere, customer=customer).arm is not None


@pytest.mark.django_db
def test_traffic_fraction_leaves_the_rest_unassigned():
    experiment = running(traffic_fraction=0.0)
    decision = assign_customer(experiment=experiment, customer=customer_make())
    assert decision.reason == "outside the experiment's traffic sample"


@pytest.mark.django_db
def test_a_stored_assignment_still_answers_after_the_experiment_stops():
    experiment = running()
    customer, newcomer = customer_make(), customer_make()
    first = assign_customer(experiment=experiment, customer=customer, now=T0)
    experiment = experiment_transition(experiment=experiment, to=Experiment.Status.STOPPED)
    again = assign_customer(experiment=experiment, customer=customer)
    assert (again.arm, again.reason, again.created) == (first.arm, "already assigned", False)
    assert again.assignment.pk == first.assignment.pk and again.assignment.assigned_at == T0
    late = assign_customer(experiment=experiment, customer=newcomer)
    assert (late.arm, late.reason) == (None, "experiment is stopped, not running")


@pytest.mark.django_db
def test_one_customer_costs_one_query_when_stored_and_a_write_when_new(
        django_assert_num_queries):
    attributes_declare()
    segment = segment_create(key="web", name="Web", rule={"attr": "channel", "op": "eq",
                                                          "value": "web"})
    experiment = running(eligibility_segment=segment, layer="email")
    # As the API view loads it: the segment comes with the experiment.
    experiment = Experiment.objects.select_related("eligibility_segment").get(pk=experiment.pk)
    customer, other = customer_make(channel="web"), customer_make(channel="web")
    # The arms (cached from now on: the experiment has started), the customer with
    # its facts, then one INSERT ... RETURNING: no transaction round trips and no
    # read-back of the row this call stored.
    with django_assert_num_queries(3):
        assert assign_customer(experiment=experiment, customer=customer).created
    with django_assert_num_queries(2):
        assert assign_external_id(experiment=experiment, external_id=other.external_id).created
    with django_assert_num_queries(1):
        assert assign_external_id(experiment=experiment,
                                  external_id=customer.external_id).reason == "already assigned"
    assert assign_external_id(experiment=experiment, external_id="nobody") is None


@pytest.mark.django_db
def test_batch_assignment_follows_the_rules_and_resumes():
    attributes_declare()
    customers = [customer_make(channel="web", consent=i % 10 != 0) for i in range(230)]
    experiment = running(arms=THREE_ARMS, traffic_fraction=0.8, layer="email", salt="batch")
    blocker = running(layer="email")
    inside = [c for c in customers if in_traffic("batch", c.external_id, 0.8)]
    willing = [c for c in inside if c.marketing_consent]
    assign_customer(experiment=blocker, customer=willing[0])
    early = assign_customer(experiment=experiment, customer=willing[1], now=T0)
    assert early.created

    result = assign_segment(experiment=experiment, chunk_size=50)
    assert result == BatchAssignmentResult(
        considered=230, assigned=len(willing) - 2, already_assigned=1,
        outside_traffic=230 - len(inside), no_consent=len(inside) - len(willing),
        other_layer_experiment=1)
    assert 0 < result.outside_traffic < 100 and result.no_consent > 0
    arms = list(experiment.arms.order_by("id"))
    rows = list(Assignment.objects.filter(experiment=experiment).select_related("customer"))
    assert {r.customer_id for r in rows} == {c.id for c in willing[1:]}
    for row in rows:
        expected = arms[choose_arm("batch", row.customer.external_id, [2, 1, 1])]
        assert row.arm_id == expected.id
    early_row = next(r for r in rows if r.customer_id == willing[1].id)
    assert (early_row.arm_id, early_row.assigned_at) == (early.arm.id, T0)

    # An interrupted run (the last 10 rows never written) resumes with just those;
    # a stored row wins even after its customer withdrew consent.
    Assignment.objects.filter(pk__in=sorted(r.pk for r in rows)[-10:]).delete()
    willing[1].marketing_consent = False
    willing[1].save(update_fields=["marketing_consent"])
    again = assign_segment(experiment=experiment, chunk_size=50)
    assert (again.assigned, again.already_assigned) == (10, len(rows) - 10)
    assert again.no_consent == result.no_consent
    assert assign_segment(experiment=experiment, chunk_size=50).assigned == 0


@pytest.mark.django_db
def test_batch_assignment_refuses_an_experiment_that_is_not_running():
    with pytest.raises(ValueError, match="is draft, not running"):
        assign_segment(experiment=experiment_make())


@pytest.mark.django_db
def test_the_loser_of_a_first_assignment_race_answers_with_the_stored_arm(monkeypatch):
    """Another request stores the customer between this call's read and its insert."""
    import experiments.assignment as assignment

    experiment = running(arms=THREE_ARMS)
    customer = customer_make()
    hashed = experiment.arms.order_by("id")[choose_arm(
        experiment.salt, customer.external_id, [2.0, 1.0, 1.0])]
    other = experiment.arms.exclude(pk=hashed.pk).first()  # e.g. weights read before a change
    read = assignment._customer_with_facts

    def read_then_lose_the_race(*args):
        facts = read(*args)  # no stored row yet
        Assignment.objects.create(experiment=experiment, customer=customer, arm=other,
                                  assigned_at=T0)
        return facts

    monkeypatch.setattr(assignment, "_customer_with_facts", read_then_lose_the_race)
    decision = assign_customer(experiment=experiment, customer=customer)
    assert (decision.arm, decision.created, decision.reason) == (other, False, "already assigned")
    assert decision.assignment.assigned_at == T0
    assert Assignment.objects.filter(experiment=experiment, customer=customer).count() == 1


@pytest.mark.integration  # the PostgreSQL pass of `make test` runs it
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_assignments_all_answer_the_one_stored_arm(monkeypatch):
    """Eight threads read "no assignment" together, then all insert: one row, one arm."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    import experiments.assignment as assignment

    if connection.vendor != "postgresql":
        from tests.missing import missing
        missing("a real race needs concurrent writers (PostgreSQL)")
    experiment = running(arms=THREE_ARMS)
    customer = customer_make()
    together = Barrier(8)
    read = assignment._customer_with_facts

    def read_then_wait(*args):
        facts = read(*args)
        together.wait(timeout=30)
        return facts

    monkeypatch.setattr(assignment, "_customer_with_facts", read_then_wait)

    def call(_):
        from django.db import connections
        try:
            return assign_customer(experiment=experiment, customer=customer)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        decisions = list(pool.map(call, range(8)))
    stored = Assignment.objects.get(experiment=experiment, customer=customer)
    assert {d.arm.id for d in decisions} == {stored.arm_id}
    assert sum(d.created for d in decisions) == 1
    assert {d.assignment.pk for d in decisions} == {stored.pk}


@pytest.mark.django_db
def test_a_cached_live_experiment_still_obeys_a_stop_at_once(django_assert_num_queries):
    from experiments.assignment import live_experiment

    experiment = running()
    customer, newcomer = customer_make(), customer_make()
    live = live_experiment(experiment.key)
    first = assign_external_id(experiment=live, external_id=customer.external_id)
    assert first.created
    with django_assert_num_queries(1):  # the cached experiment and arms, one read
        again = assign_external_id(experiment=live_experiment(experiment.key),
                                   external_id=customer.external_id)
    assert (again.arm, again.created) == (first.arm, False)
    experiment_transition(experiment=experiment, to=Experiment.Status.STOPPED)
    cached = live_experiment(experiment.key)
    assert cached.status == Experiment.Status.RUNNING  # still the copy read before the stop
    late = assign_external_id(experiment=cached, external_id=newcomer.external_id)
    assert (late.arm, late.reason) == (None, "experiment is stopped, not running")
    assert not Assignment.objects.filter(customer=newcomer).exists()
    assert live_experiment(experiment.key).status == Experiment.Status.STOPPED
