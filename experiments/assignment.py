"""Assigning customers to arms: one customer, a list of CRM ids, or a whole segment.

The decision itself is one pure function, experiments.assignment_rules
(rules, their order and the words of every reason; the arm from
experiments.hashing). The three entry points here only feed it: each reads
its customers' facts (stored arm, eligibility as of now, a rival assignment
in the same layer, consent) in as few queries as it can, calls
``assignment_decide`` and writes the rows it decided.

Concurrent writers: the unique constraint on (experiment, customer) keeps
one row. ``assign_customer`` inserts with ON CONFLICT DO NOTHING RETURNING
and ``assign_customers`` with ignore_conflicts; both answer with the row that
is stored, so two callers racing for the same customer both return the
winner's arm.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import connection, transaction
from django.db.models import (
    CharField,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.utils import timezone

from core.db.bulk import rows_insert
from core.db.lookups import values_matching
from experiments.assignment_rules import (
    ExperimentState,
    Reason,
    assignment_decide,
    reason_text,
)
from experiments.models import Arm, Assignment, Experiment
from marketing.models import Customer
from marketing.segment_rules import segment_members


@dataclass(frozen=True)
class AssignmentDecision:
    arm: Arm | None
    reason: str
    created: bool = False
    assignment: Assignment | None = None


@dataclass(frozen=True)
class BatchAssignmentResult:
    considered: int
    assigned: int
    already_assigned: int
    outside_traffic: int
    no_consent: int
    other_layer_experiment: int


@dataclass(frozen=True)
class BulkAssignmentResult:
    # One per requested customer, in request order: (external id, Arm or None, reason, created).
    decisions: list[tuple[str, Arm | None, str, bool]]
    rejected: list[dict]


ERASED_REASON = "the customer's personal data was erased"


def _state(experiment: Experiment, arms: Sequence[Arm]) -> ExperimentState:
    return ExperimentState(
        status=experiment.status, running=experiment.status == Experiment.Status.RUNNING,
        salt=experiment.salt, traffic_fraction=experiment.traffic_fraction,
        weights=tuple(a.weight for a in arms),
        any_arm_contacts=any(a.contacts_customer for a in arms),
        # Only a running experiment gets as far as the segment rule.
        segment_key=(experiment.eligibility_segment.key if experiment.eligibility_segment_id
                     and experiment.status == Experiment.Status.RUNNING else ""),
        layer=experiment.layer,
    )


def _stored_arm(experiment: Experiment) -> Subquery:
    """Per customer row: the arm id of its stored assignment, NULL for none."""
    return Subquery(Assignment.objects.filter(
        experiment=experiment, customer=OuterRef("pk")).values("arm_id")[:1])


def _rivals(experiment: Experiment, customer) -> QuerySet:
    """The customer's assignments in other experiments of this layer, oldest first."""
    return (Assignment.objects.filter(customer=customer, experiment__layer=experiment.layer)
            .exclude(experiment=experiment).order_by("pk"))


def _rival_key(experiment: Experiment, customer) -> Subquery | Value:
    """The key of the experiment named in the layer reason; NULL without a rival or a layer."""
    if not experiment.layer:
        return Value(None, output_field=CharField())
    return Subquery(_rivals(experiment, customer).values("experiment__key")[:1])


def _eligible(experiment: Experiment, customer, now: datetime | None) -> Exists | Value:
    """Membership of the eligibility segment; ``now`` None: as of this instant.

    With None the rule reads the customer row as it is, which is the state
    at this instant, without first asking the attribute history whether
    anything changed since (a query a live assignment does not need).
    """
    if not experiment.eligibility_segment_id:
        return Value(True)
    members = segment_members(experiment.eligibility_segment.rule, as_of=now)
    return Exists(members.filter(pk=customer))


def _index(arms: Sequence[Arm]) -> dict[int | None, int]:
    """Arm id -> position in ``arms``; None (no stored arm) -> -1."""
    return {None: -1, **{a.id: i for i, a in enumerate(arms)}}


def assign_customer(
    *, experiment: Experiment, customer: Customer, now: datetime | None = None
) -> AssignmentDecision:
    """Return the customer's arm (creating the assignment) or the reason for none.

    ``assign_external_id`` with the customer already in hand (read again with
    its facts, by primary key).
    """
    decision = _assign_one(experiment, Q(pk=customer.pk), now)
    if decision is None:
        raise Customer.DoesNotExist(f"customer {customer.pk} is gone")
    return decision


def assign_external_id(
    *, experiment: Experiment, external_id: str, now: datetime | None = None
) -> AssignmentDecision | None:
    """The live CRM call: the arm of the customer with this CRM id, or None for no such customer.

    A repeat call is one query (the customer, its stored assignment and its
    facts); a first call adds one INSERT ... ON CONFLICT DO NOTHING RETURNING,
    whose answer says whether this call stored the row. Only the loser of a
    race for the same customer reads the winner's row back. The arms come from
    a per-process cache once the experiment has started (they are fixed then).
    """
    return _assign_one(experiment, Q(external_id=external_id), now)


# Started experiments by key, per process, for live calls (live_experiment).
_LIVE: dict[str, tuple[float, Experiment]] = {}
LIVE_SECONDS = 2.0


def live_experiment(key: str) -> Experiment:
    """The experiment with this key, for ``assign_external_id``; raises Experiment.DoesNotExist.

    A started experiment is kept in this process for ``LIVE_SECONDS``: what
    decides its assignments (salt, arms, segment, layer, traffic) is fixed
    once it has started, and its status, which is not, is read again in the
    same query as the customer's facts, so a Stop applies to the next call.
    Only an edit of the eligibility segment's rule waits up to LIVE_SECONDS.
    """
    now = time.monotonic()
    cached = _LIVE.get(key)
    if cached is not None and now - cached[0] < LIVE_SECONDS:
        return cached[1]
    experiment = Experiment.objects.select_related("eligibility_segment").get(key=key)
    if experiment.status != Experiment.Status.DRAFT:
        if len(_LIVE) >= _ARMS_LIMIT:
            _LIVE.clear()
        _LIVE[key] = (now, experiment)
    return experiment


def _assign_one(experiment: Experiment, which: Q, now: datetime | None
                ) -> AssignmentDecision | None:
    as_of, now = now, now or timezone.now()
    customer = _customer_with_facts(experiment, which, as_of)
    if customer is None:
        return None
    if customer.erased_at is not None:  # erasure is final: no arm, stored or new
        return AssignmentDecision(None, ERASED_REASON)
    if (customer._status, customer._started_at) != (experiment.status, experiment.started_at):
        # Stopped, started (or, in tests, replaced) since this copy was read.
        _LIVE.pop(experiment.key, None)
        return _assign_one(live_experiment(experiment.key), which, as_of)
    arms = experiment_arms(experiment)
    state = _state(experiment, arms)
    stored = next((i for i, a in enumerate(arms) if a.id == customer._arm_id), -1)
    rival = getattr(customer, "_rival", None)
    decided = assignment_decide(
        state=state, external_ids=[customer.external_id], consent=[customer.marketing_consent],
        stored_arm=[stored], eligible=[getattr(customer, "_eligible", True)],
        other_layer=[rival is not None])
    reason = Reason(decided.reason[0])
    if reason == Reason.ALREADY_ASSIGNED:
        arm = arms[stored]
        # The stored row, from the columns the facts query already read.
        assignment = _stored(customer._assignment_id, experiment, customer, arm,
                             customer._assigned_at)
        return AssignmentDecision(arm, reason_text(reason, state), assignment=assignment)
    if reason != Reason.ASSIGNED:
        return AssignmentDecision(None, reason_text(reason, state, other_experiment=rival or ""))
    arm = arms[decided.arm[0]]
    created_id = _assignment_insert(experiment.id, customer.id, arm.id, now)
    if created_id is not None:  # this call stored the row: its answer is the stored one
        saved = _stored(created_id, experiment, customer, arm, now)
        return AssignmentDecision(arm, reason_text(Reason.ASSIGNED, state), created=True,
                                  assignment=saved)
    # A concurrent request stored the customer's row first: answer with that row
    # (a new statement, so it sees the winner's committed insert).
    saved = Assignment.objects.select_related("arm").get(experiment=experiment, customer=customer)
    return AssignmentDecision(saved.arm, reason_text(Reason.ALREADY_ASSIGNED, state),
                              assignment=saved)


def _customer_with_facts(experiment: Experiment, which: Q,
                         as_of: datetime | None) -> Customer | None:
    """The customer, carrying its stored assignment (``_assignment_id``, ``_arm_id``,
    ``_assigned_at``: a LEFT JOIN, NULL for none), the experiment's current
    ``_status`` and ``_started_at``, and, for a running experiment,
    ``_eligible`` and ``_rival`` (the rules stop earlier otherwise). One query."""
    customers = Customer.objects.filter(which).annotate(
        mine=FilteredRelation("assignments", condition=Q(assignments__experiment=experiment)),
        _assignment_id=F("mine__id"), _arm_id=F("mine__arm_id"),
        _assigned_at=F("mine__assigned_at"),
        # The status as it is now: the caller's experiment may be a cached copy.
        _status=Subquery(Experiment.objects.filter(pk=experiment.pk).values("status")[:1]),
        _started_at=Subquery(Experiment.objects.filter(pk=experiment.pk)
                             .values("started_at")[:1]))
    if experiment.status == Experiment.Status.RUNNING:
        customers = customers.annotate(_eligible=_eligible(experiment, OuterRef("pk"), as_of),
                                       _rival=_rival_key(experiment, OuterRef("pk")))
    return customers.only("id", "external_id", "marketing_consent", "erased_at").first()


# Arms of started experiments, per process: fixed once an experiment leaves
# draft (the admin and the API edit arms of drafts only). The key holds the
# salt and start time as well as the id, so a reused id (SQLite after a
# rollback) never finds another experiment's arms.
_ARMS: dict[tuple, tuple[Arm, ...]] = {}
_ARMS_LIMIT = 1_024


def experiment_arms(experiment: Experiment) -> tuple[Arm, ...]:
    """The experiment's arms in id order; cached in this process once it has started."""
    if experiment.status == Experiment.Status.DRAFT or experiment.started_at is None:
        return tuple(experiment.arms.order_by("id"))
    key = (experiment.id, experiment.salt, experiment.started_at)
    arms = _ARMS.get(key)
    if arms is None:
        if len(_ARMS) >= _ARMS_LIMIT:
            _ARMS.clear()
        arms = _ARMS[key] = tuple(experiment.arms.order_by("id"))
    return arms


def _stored(pk: int, experiment: Experiment, customer: Customer, arm: Arm,
            assigned_at: datetime) -> Assignment:
    """The stored row as an instance, from values in hand (as if read from the database)."""
    row = Assignment.from_db(Assignment.objects.db,
                             ["id", "experiment_id", "customer_id", "arm_id", "assigned_at"],
                             [pk, experiment.id, customer.id, arm.id, assigned_at])
    row.experiment, row.customer, row.arm = experiment, customer, arm
    return row


def _assignment_insert(experiment_id: int, customer_id: int, arm_id: int,
                       assigned_at: datetime) -> int | None:
    """Insert the assignment unless one is stored; its id, or None when another was first.

    One statement, atomic on its own (no transaction round trips): the
    unique constraint on (experiment, customer) decides the race, and
    ``RETURNING`` says whether this insert won. PostgreSQL and SQLite 3.35+.

    On PostgreSQL the statement's own transaction commits without waiting
    for the WAL flush (``synchronous_commit`` off for it alone): about 5 ms
    of a first call's time on this project's machines. The row is visible to
    every other connection at once, so the race is decided as before; only
    a database crash in the next fraction of a second could lose it, and any
    later synchronous commit (an exposure, a conversion) flushes it first.
    A lost row costs nothing wrong: the arm is the hash of the experiment's
    salt, the customer id and the weights, all fixed since the start, so the
    next call stores the same arm again.
    """
    table = connection.ops.quote_name(Assignment._meta.db_table)
    values = "VALUES (%s, %s, %s, %s)"
    if connection.vendor == "postgresql":
        values = ("SELECT %s, %s, %s, %s FROM "
                  "(SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (experiment_id, customer_id, arm_id, assigned_at) {values} "
            "ON CONFLICT (experiment_id, customer_id) DO NOTHING RETURNING id",
            [experiment_id, customer_id, arm_id,
             connection.ops.adapt_datetimefield_value(assigned_at)])
        row = cursor.fetchone()
    return None if row is None else row[0]


def assign_customers(
    *, experiment: Experiment, external_ids: Sequence[object], now: datetime | None = None,
) -> BulkAssignmentResult:
    """``assign_customer`` for many CRM ids, in a few queries.

    Unknown customers are rejected with their index and then nothing is
    written. A customer listed twice gets the same answer twice.
    """
    wanted = sorted({e for e in external_ids if isinstance(e, str) and "\x00" not in e})
    now = now or timezone.now()
    arms = list(experiment.arms.order_by("id"))
    state = _state(experiment, arms)
    # Erased customers are unknown here: their CRM ids are no longer stored.
    customers = Customer.objects.filter(erased_at__isnull=True).annotate(
        _stored_arm=_stored_arm(experiment))
    if state.running:
        customers = customers.annotate(_eligible=_eligible(experiment, OuterRef("pk"), now),
                                       _rival=_rival_key(experiment, OuterRef("pk")))
    else:
        customers = customers.annotate(_eligible=Value(True),
                                       _rival=Value(None, output_field=CharField()))
    facts = list(values_matching(customers.values_list(
        "external_id", "id", "marketing_consent", "_stored_arm", "_eligible", "_rival"),
        "external_id", wanted))
    found = {row[0] for row in facts}
    rejected = [
        {"index": i, "errors": {"customer": f"no customer with external_id {e!r}"}}
        for i, e in enumerate(external_ids) if not isinstance(e, str) or e not in found
    ]
    if rejected:
        return BulkAssignmentResult([], rejected)

    index = _index(arms)
    ids, pks, consent, stored, eligible, rivals = zip(*facts, strict=True) if facts else ((),) * 6
    decided = assignment_decide(
        state=state, external_ids=ids, consent=np.array(consent, dtype=bool),
        stored_arm=np.array([index[a] for a in stored], dtype=np.int64),
        eligible=np.array(eligible, dtype=bool),
        other_layer=np.array([r is not None for r in rivals], dtype=bool))
    answers: dict[str, tuple[Arm | None, str, bool]] = {}
    for e, arm_index, reason, rival in zip(ids, decided.arm, decided.reason, rivals, strict=True):
        answers[e] = (arms[arm_index] if arm_index >= 0 else None,
                      reason_text(reason, state, other_experiment=rival or ""), False)
    chosen = {pks[i]: (ids[i], arms[decided.arm[i]])
              for i in np.flatnonzero(decided.reason == Reason.ASSIGNED)}
    if chosen:
        with transaction.atomic():
            # As in assign_customer: a concurrent assignment keeps its row.
            Assignment.objects.bulk_create(
                [Assignment(experiment=experiment, customer_id=pk, arm=arm, assigned_at=now)
                 for pk, (_, arm) in chosen.items()], batch_size=2_000, ignore_conflicts=True)
        arms_by_id = {a.id: a for a in arms}
        for chunk in _chunks(list(chosen)):
            for pk, arm_id, assigned_at in Assignment.objects.filter(
                experiment=experiment, customer_id__in=chunk,
            ).values_list("customer_id", "arm_id", "assigned_at"):
                external_id, arm = chosen[pk]
                mine = arm_id == arm.id and assigned_at == now
                answers[external_id] = (arms_by_id[arm_id], reason_text(
                    Reason.ASSIGNED if mine else Reason.ALREADY_ASSIGNED, state), mine)
    return BulkAssignmentResult([(e, *answers[e]) for e in external_ids], [])


def _chunks(values: Sequence, size: int = 5_000):
    """Slices of at most ``size``: SQLite caps the parameters of one query."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _candidate_chunks(experiment: Experiment, now: datetime, chunk_size: int) -> Iterator[list]:
    """Eligible customers in primary-key order, a chunk at a time (keyset paging).

    Rows: (id, external_id, marketing_consent, stored arm id or None, has a rival in the layer).
    """
    if experiment.eligibility_segment_id:
        customers = segment_members(experiment.eligibility_segment.rule, as_of=now)
    else:
        customers = Customer.objects.all()
    # A flag is all the counts need: EXISTS stops at the first rival.
    rival = (Exists(_rivals(experiment, OuterRef("pk"))) if experiment.layer
             else Value(False))
    customers = customers.filter(erased_at__isnull=True).annotate(
        _stored_arm=_stored_arm(experiment), _rival=rival)
    fields = ["id", "external_id", "marketing_consent", "_stored_arm", "_rival"]
    last_id = 0
    while True:
        chunk = list(customers.filter(id__gt=last_id).order_by("id").values_list(*fields)[:chunk_size])
        if not chunk:
            return
        yield chunk
        last_id = chunk[-1][0]


def assign_segment(
    *, experiment: Experiment, now: datetime | None = None, chunk_size: int = 20_000,
) -> BatchAssignmentResult:
    """Assign every eligible customer not yet assigned, in chunks.

    Candidates are the eligibility segment's members (everyone without a
    segment), so the eligibility rule holds for each. Memory is bounded by
    ``chunk_size``; each chunk is one transaction, so an interrupted run
    resumes where it stopped when called again. A stopped or draft
    experiment is refused outright rather than counted customer by customer.
    """
    if experiment.status != Experiment.Status.RUNNING:
        raise ValueError(f"experiment {experiment.key} is {experiment.status}, not running")
    now = now or timezone.now()
    arms = list(experiment.arms.order_by("id"))
    state = _state(experiment, arms)
    index = _index(arms)
    arm_ids = np.array([a.id for a in arms], dtype=np.int64)
    counts = np.zeros(len(Reason), dtype=np.int64)
    assigned = 0
    for chunk in _candidate_chunks(experiment, now, chunk_size):
        pks, ids, consent, stored, rival = zip(*chunk, strict=True)
        decided = assignment_decide(
            state=state, external_ids=ids, consent=np.array(consent, dtype=bool),
            stored_arm=np.array([index[a] for a in stored], dtype=np.int64),
            eligible=np.ones(len(chunk), dtype=bool), other_layer=np.array(rival, dtype=bool))
        counts += np.bincount(decided.reason, minlength=len(Reason))
        new = np.flatnonzero(decided.reason == Reason.ASSIGNED)
        new_arms = arm_ids[decided.arm[new]].tolist()
        rows = [(experiment.id, pks[i], arm_id, now) for i, arm_id in zip(new.tolist(), new_arms,
                                                                           strict=True)]
        with transaction.atomic():
            assigned += _insert_assignments(rows)
    return BatchAssignmentResult(
        considered=int(counts.sum()), assigned=assigned,
        already_assigned=int(counts[Reason.ALREADY_ASSIGNED]),
        outside_traffic=int(counts[Reason.OUTSIDE_TRAFFIC]),
        no_consent=int(counts[Reason.NO_CONSENT]),
        other_layer_experiment=int(counts[Reason.OTHER_LAYER]))


def _insert_assignments(rows: list[tuple]) -> int:
    # COPY on PostgreSQL; a customer assigned concurrently by assign_customer
    # makes the chunk fail on the unique constraint and a re-run resumes.
    return rows_insert(Assignment, ["experiment_id", "customer_id", "arm_id", "assigned_at"], rows)
