"""Follow-up experiments: prove a targeting list's policy in the field.

A targeting list says, for each customer on it, which offer (arm) to send.
The follow-up randomises the list's *population* (the customers it was
chosen from: marketing consent, not erased, scored by the list's model
version, in the list's segment if any) into three groups:

* ``policy``: contacted as the policy says (the list's offer for customers on
  the list, no contact for the others);
* ``random``: the same expected number of contacts and the same offer mix,
  chosen at random. With ``r`` = the policy's contact rate over the population
  (customers of the population on the list / customers of the population)
  and ``m_k`` = the policy's share of offer ``k`` among its contacts, a
  random-group customer is contacted when
  ``unit_hash(salt, "followup_contact", external_id) < r`` and then gets the
  first offer (by name) whose cumulative share exceeds
  ``unit_hash(salt, "followup_offer", external_id)``. So in a random group of
  ``n`` customers the contacts are Binomial(n, r) and each offer's count
  Binomial(contacts, m_k): the policy's numbers up to sampling error;
* ``holdout``: never contacted (the experiment's control).

Groups are the experiment's arms, weighted by the manager's shares, and each
customer's group is the ordinary arm hash. The population is written as
assignments when the follow-up starts (``experiments.population``); the
experiment has ``traffic_fraction = 0`` so the generic assignment endpoints
enrol nobody else. The random group's drawn offers are stored then
(``TargetingFollowUpOffer``) so the plan export and the analysis read them in
SQL; the policy group's offers are the list's entries.

Analysis: per customer, over the attribution window after assignment,

    profit = value - c_contact(offer) - c_conversion(offer) * converted

where value is the revenue for a revenue (sum) metric and
``value_per_conversion * y`` otherwise, and an uncontacted customer costs
nothing. The database sums n, Σprofit, Σprofit² per group
(``experiments.outcomes.outcome_profit_cells``); the policy's incremental
profit per customer against random and against holdout is the Welch
comparison of ``experiments.stats.frequentist.compare_arms`` on those means.
Costs: an offer's arm of the source experiment (``Arm.cost_per_contact`` /
``cost_per_conversion`` when that arm has them) else the campaign's; they are
frozen in ``plan["economics"]`` at creation so re-analysis is reproducible.
"""

from __future__ import annotations

import csv
import io
import math
import secrets
from collections.abc import Iterator, Mapping
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from core.db.bulk import rows_insert
from core.units import CURRENCY
from experiments.hashing import unit_hash
from experiments.models import Assignment, Experiment, Metric
from experiments.outcomes import OfferCosts, outcome_profit_cells
from experiments.population import assign_population
from experiments.services import ArmSpec, MetricSpec, experiment_create, experiment_transition
from experiments.stats.arm_estimates import mean_estimate
from experiments.stats.frequentist import compare_arms
from experiments.stats.sufficient import ArmStatistics
from marketing.models import Customer, Event
from marketing.segment_rules import segment_members
from modelling.models import (
    CustomerScore,
    TargetingEntry,
    TargetingFollowUp,
    TargetingFollowUpOffer,
    TargetingList,
)

POLICY, RANDOM, HOLDOUT = "policy", "random", "holdout"
GROUPS = (POLICY, RANDOM, HOLDOUT)
DEFAULT_SHARES = {POLICY: 0.45, RANDOM: 0.45, HOLDOUT: 0.10}
# Shares are typed by people (0.45 + 0.45 + 0.1 is 1.0000000000000002 in floats).
SHARE_TOLERANCE = 1e-6


def follow_up_shares_validate(shares: Mapping[str, object] | None) -> dict[str, float]:
    """The three group shares as floats: each positive, together 1 within SHARE_TOLERANCE."""
    if shares is None:
        return dict(DEFAULT_SHARES)
    if not isinstance(shares, Mapping) or set(shares) != set(GROUPS):
        raise ValidationError({"shares": f"must give exactly {', '.join(GROUPS)}"})
    out: dict[str, float] = {}
    for group in GROUPS:
        value = shares[group]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError({f"shares.{group}": "must be a number"})
        if not (math.isfinite(value) and value > 0):
            raise ValidationError({f"shares.{group}": "must be positive"})
        out[group] = float(value)
    total = sum(out.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ValidationError({"shares": f"must sum to 1 (they sum to {total:g})"})
    return out


def follow_up_population(target: TargetingList, *, now: datetime | None = None
                         ) -> QuerySet[Customer]:
    """The customers the list was chosen from, as modelling.targeting chooses them, as of now."""
    scored = CustomerScore.objects.filter(model_version_id=target.model_version_id,
                                          uplift__isnull=False).values("customer_id")
    customers = Customer.objects.filter(marketing_consent=True, erased_at__isnull=True,
                                        id__in=scored)
    if target.segment_id is not None:
        members = segment_members(target.segment.rule, as_of=now or timezone.now())
        customers = customers.filter(id__in=members.values("id"))
    return customers


def _policy_over(target: TargetingList, customer_ids: QuerySet) -> dict:
    """Contact rate and offer mix of the list over a population (one GROUP BY)."""
    eligible = customer_ids.count()
    by_offer = dict(TargetingEntry.objects.filter(targeting_list=target,
                                                  customer_id__in=customer_ids)
                    .values_list("arm").annotate(n=Count("id")).values_list("arm", "n"))
    contacts = sum(by_offer.values())
    return {
        "eligible": eligible, "on_list": contacts,
        "contact_rate": contacts / eligible if eligible else 0.0,
        "offer_mix": {k: by_offer[k] / contacts for k in sorted(by_offer)} if contacts else {},
    }


def _economics(target: TargetingList) -> dict:
    """Value per conversion and each offer's costs: its source arm's, else the campaign's."""
    campaign, version = target.campaign, target.model_version
    # Per-arm costs are optional fields of Arm; read them when the model has them.
    default = {"cost_per_contact": float(campaign.cost_per_contact),
               "cost_per_conversion": float(getattr(campaign, "cost_per_conversion", None)
                                            or 0.0)}
    arms = {a.name: a for a in version.experiment.arms.all()} if version.experiment_id else {}
    offers = set(TargetingEntry.objects.filter(targeting_list=target)
                 .values_list("arm", flat=True).distinct())
    offers |= {name for name, arm in arms.items() if arm.contacts_customer}
    per_offer = {}
    for offer in sorted(offers):
        arm = arms.get(offer)
        costs = {}
        for name in ("cost_per_contact", "cost_per_conversion"):
            own = getattr(arm, name, None)
            costs[name] = float(own) if own is not None else default[name]
        per_offer[offer] = costs
    return {"value_per_conversion": float(campaign.value_per_conversion), "default": default,
            "offers": per_offer}


def _metrics(target: TargetingList) -> list[MetricSpec]:
    """The source experiment's metrics, or purchase conversion (primary) and revenue."""
    version = target.model_version
    if version.experiment_id:
        return [MetricSpec(m.name, m.event_kind, m.aggregation, role=m.role,
                           higher_is_better=m.higher_is_better,
                           minimum_detectable_effect=m.minimum_detectable_effect)
                for m in version.experiment.metrics.order_by("id")]
    return [MetricSpec("purchase", Event.Kind.PURCHASE, Metric.Aggregation.CONVERTED,
                       role=Metric.Role.PRIMARY),
            MetricSpec("revenue", Event.Kind.PURCHASE, Metric.Aggregation.SUM)]


@transaction.atomic
def targeting_follow_up_create(
    *, targeting_list: TargetingList, shares: Mapping[str, object] | None = None,
    key: str | None = None, name: str | None = None, start: bool = False,
    now: datetime | None = None,
) -> TargetingFollowUp:
    """Create the follow-up experiment of a list's policy, in draft unless ``start``.

    The experiment is made by experiments.services.experiment_create (its
    rules apply): arms policy / random / holdout weighted by ``shares``
    (default 45/45/10), holdout the control and the only arm that contacts
    nobody, the source experiment's metrics, ``traffic_fraction = 0`` (the
    population is written at start; see the module docstring).
    """
    target = targeting_list
    weights = follow_up_shares_validate(shares)
    population = follow_up_population(target, now=now)
    preview = _policy_over(target, population.values("id"))
    if preview["eligible"] == 0:
        raise ValidationError({"targeting_list": "no customer is eligible (consenting, not "
                                                 "erased, scored by the list's model version)"})
    if preview["on_list"] == 0:
        raise ValidationError({"targeting_list": "the list contacts none of its eligible "
                                                 "customers; there is no policy to test"})
    version = target.model_version
    source = version.experiment
    experiment = experiment_create(
        campaign=target.campaign,
        key=key or f"followup_{target.id}_{secrets.token_hex(4)}",
        name=name or f"Follow-up of targeting list #{target.id}",
        hypothesis=(f"The policy of targeting list #{target.id} (model version #{version.id}) "
                    "earns more per customer than the same contacts and offer mix at random, "
                    "and more than no contact."),
        arms=[ArmSpec(POLICY, weights[POLICY]), ArmSpec(RANDOM, weights[RANDOM]),
              ArmSpec(HOLDOUT, weights[HOLDOUT], is_control=True, contacts_customer=False)],
        metrics=_metrics(target),
        attribution_window_days=source.attribution_window_days if source else 14,
        traffic_fraction=0.0, planned_sample_size=preview["eligible"],
    )
    follow_up = TargetingFollowUp(targeting_list=target, experiment=experiment, shares=weights,
                                  plan={**preview, "economics": _economics(target),
                                        "populated_at": None})
    follow_up.full_clean()
    follow_up.save()
    if start:
        targeting_follow_up_start(follow_up=follow_up, now=now)
    return follow_up


def random_offer(salt: str, external_id: str, contact_rate: float,
                 offer_mix: Mapping[str, float]) -> str | None:
    """The random group's draw for one customer (formula in the module docstring)."""
    if unit_hash(salt, "followup_contact", external_id) >= contact_rate or not offer_mix:
        return None
    offers = sorted(offer_mix)
    u = unit_hash(salt, "followup_offer", external_id) * sum(offer_mix.values())
    cumulative = 0.0
    for offer in offers:
        cumulative += offer_mix[offer]
        if u < cumulative:
            return offer
    return offers[-1]  # float rounding at the very top of the range


def targeting_follow_up_start(*, follow_up: TargetingFollowUp, now: datetime | None = None,
                              chunk_size: int = 20_000) -> TargetingFollowUp:
    """Start the experiment (if a draft), assign its population and draw the random offers.

    Safe to call again: stored assignments and drawn offers are kept, so an
    interrupted start resumes, and an experiment started elsewhere gets its
    population. The plan's contact rate and mix are those of the policy over
    the population actually assigned.
    """
    experiment = follow_up.experiment
    if experiment.status == Experiment.Status.DRAFT:
        experiment = experiment_transition(experiment=experiment, to=Experiment.Status.RUNNING)
    elif experiment.status != Experiment.Status.RUNNING:
        raise ValidationError({"status": f"the experiment is {experiment.status}"})
    now = now or timezone.now()
    target = follow_up.targeting_list
    assign_population(experiment=experiment, customers=follow_up_population(target, now=now),
                      now=now, chunk_size=chunk_size)
    assigned = Assignment.objects.filter(experiment=experiment).values("customer_id")
    policy = _policy_over(target, assigned)
    random_arm = experiment.arms.get(name=RANDOM)
    pending = (Assignment.objects.filter(experiment=experiment, arm=random_arm)
               .exclude(Exists(TargetingFollowUpOffer.objects.filter(
                   follow_up=follow_up, customer_id=OuterRef("customer_id"))))
               .order_by("customer_id").values_list("customer_id", "customer__external_id"))
    last = 0
    while chunk := list(pending.filter(customer_id__gt=last)[:chunk_size]):
        last = chunk[-1][0]
        rows = [(follow_up.id, customer_id, offer) for customer_id, external_id in chunk
                if (offer := random_offer(experiment.salt, external_id, policy["contact_rate"],
                                          policy["offer_mix"])) is not None]
        with transaction.atomic():
            rows_insert(TargetingFollowUpOffer, ["follow_up_id", "customer_id", "offer"], rows)
    follow_up.plan = {**follow_up.plan, **policy,
                      "populated_at": follow_up.plan.get("populated_at") or now.isoformat()}
    follow_up.save(update_fields=["plan"])
    follow_up.experiment = experiment
    return follow_up


# --- The plan the CRM sends ---------------------------------------------------------

def follow_up_plan(follow_up: TargetingFollowUp) -> QuerySet[Assignment]:
    """Each assigned customer with ``group``, ``customer_external_id`` and ``offer``.

    ``offer`` is None for no contact. Read from the assignments, the list's
    entries (policy) and the drawn offers (random), by customer id.
    Re-filtered at every read, like a targeting list: customers who withdrew
    consent or were erased since are not in the plan the CRM sends from.
    """
    arms = dict(follow_up.experiment.arms.values_list("name", "id"))
    listed = TargetingEntry.objects.filter(targeting_list_id=follow_up.targeting_list_id,
                                           customer_id=OuterRef("customer_id")).values("arm")
    drawn = TargetingFollowUpOffer.objects.filter(follow_up=follow_up,
                                                  customer_id=OuterRef("customer_id"))
    return (Assignment.objects.filter(experiment_id=follow_up.experiment_id,
                                      customer__marketing_consent=True,
                                      customer__erased_at__isnull=True)
            .annotate(group=F("arm__name"), customer_external_id=F("customer__external_id"),
                      offer=Case(When(arm_id=arms[POLICY], then=Subquery(listed[:1])),
                                 When(arm_id=arms[RANDOM], then=Subquery(drawn.values("offer")[:1])),
                                 default=Value(None), output_field=CharField()))
            .order_by("customer_id"))


PLAN_CSV_COLUMNS = ["customer_external_id", "group", "offer"]


def csv_safe(value: object) -> str:
    """A cell a spreadsheet will not run as a formula: ``'`` before = + - @ (OWASP)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def follow_up_plan_csv(follow_up: TargetingFollowUp, *, chunk_size: int = 10_000
                       ) -> Iterator[str]:
    """CSV lines (header first) of the plan, streamed; an empty offer means no contact."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(PLAN_CSV_COLUMNS)
    yield buffer.getvalue()
    rows = follow_up_plan(follow_up).values_list("customer_external_id", "group", "offer")
    for row in rows.iterator(chunk_size=chunk_size):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_safe(cell) for cell in row])
        yield buffer.getvalue()


# --- Analysis -------------------------------------------------------------------------

def _offer_sql(follow_up: TargetingFollowUp, arms: Mapping[str, int]) -> tuple[str, list]:
    q = connection.ops.quote_name
    entries, drawn = q(TargetingEntry._meta.db_table), q(TargetingFollowUpOffer._meta.db_table)
    sql = (f"CASE WHEN p.arm_id = %s THEN (SELECT te.arm FROM {entries} te "
           f"WHERE te.targeting_list_id = %s AND te.customer_id = p.customer_id) "
           f"WHEN p.arm_id = %s THEN (SELECT fo.offer FROM {drawn} fo "
           f"WHERE fo.follow_up_id = %s AND fo.customer_id = p.customer_id) ELSE NULL END")
    return sql, [arms[POLICY], follow_up.targeting_list_id, arms[RANDOM], follow_up.id]


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def targeting_follow_up_analyse(*, follow_up: TargetingFollowUp,
                                now: datetime | None = None) -> TargetingFollowUp:
    """Incremental profit per customer of the policy against random and against holdout.

    Stores ``analysis`` (groups, comparisons, summary sentence) on the
    follow-up; formulas in the module docstring.
    """
    experiment = follow_up.experiment
    metrics = {m.name: m for m in experiment.metrics.all()}
    metric = (metrics.get(follow_up.targeting_list.model_version.target_metric)
              or next(m for m in metrics.values() if m.role == Metric.Role.PRIMARY))
    economics = follow_up.plan["economics"]
    value_per_unit = (1.0 if metric.aggregation == Metric.Aggregation.SUM
                      else economics["value_per_conversion"])
    arms = dict(experiment.arms.values_list("name", "id"))
    offer_sql, offer_params = _offer_sql(follow_up, arms)
    cells = outcome_profit_cells(
        experiment, value_metric=metric, value_per_unit=value_per_unit,
        offer_sql=offer_sql, offer_params=offer_params,
        costs={k: OfferCosts(**v) for k, v in economics["offers"].items()},
        default_costs=OfferCosts(**economics["default"]))
    groups, statistics = {}, {}
    for group in GROUPS:
        own = {offer: cell for (arm_id, offer), cell in cells.items() if arm_id == arms[group]}
        n = sum(c.n for c in own.values())
        statistics[group] = ArmStatistics(n=n, sum_y=sum(c.sum_profit for c in own.values()),
                                          sum_y2=sum(c.sum_profit2 for c in own.values()))
        groups[group] = {
            "customers": n,
            "contacts": sum(c.n for offer, c in own.items() if offer is not None),
            "offers": {offer: own[offer].n for offer in sorted(o for o in own if o)},
            "conversions": sum(c.conversions for c in own.values()),
            "value": sum(c.value for c in own.values()),
            "profit": statistics[group].sum_y,
            "profit_per_customer": _number(statistics[group].mean_y) if n else None,
        }
    comparisons = {}
    for against in (RANDOM, HOLDOUT):
        effect = compare_arms(mean_estimate(statistics[against]), mean_estimate(statistics[POLICY]),
                              alpha=experiment.alpha)
        comparisons[against] = {
            "difference": _number(effect.absolute_effect), "se": _number(effect.absolute_se),
            "ci_low": _number(effect.absolute_ci_low), "ci_high": _number(effect.absolute_ci_high),
            "p_value": _number(effect.p_value)}
    analysis = {"metric": metric.name, "value_per_unit": value_per_unit,
                "confidence": 1 - experiment.alpha, "groups": groups,
                "policy_minus": comparisons}
    analysis["summary"] = follow_up_summary(analysis)
    follow_up.analysis = analysis
    follow_up.analysed_at = now or timezone.now()
    follow_up.save(update_fields=["analysis", "analysed_at"])
    return follow_up


def follow_up_summary(analysis: Mapping) -> str:
    """One sentence for the manager, e.g. "The policy earned +€0.42 per customer more than
    random (95% CI +0.11 to +0.73) and +€0.95 more than no contact (95% CI ...)."."""
    if not analysis:
        return "Not analysed yet."
    level = f"{round(100 * analysis['confidence']):d}%"

    def part(against: str, label: str, per_customer: str) -> str | None:
        c = analysis["policy_minus"][against]
        if c["difference"] is None or c["ci_low"] is None:
            return None
        more = "more" if c["difference"] >= 0 else "less"
        sign = "+" if c["difference"] >= 0 else ""
        return (f"{sign}{CURRENCY}{abs(c['difference']):.2f}{per_customer} {more} than {label} "
                f"({level} CI {c['ci_low']:+.2f} to {c['ci_high']:+.2f})")

    random_part = part(RANDOM, "random", " per customer")
    holdout_part = part(HOLDOUT, "no contact", "")
    if random_part is None or holdout_part is None:
        return "Not enough customers in every group yet to compare profit."
    return f"The policy earned {random_part} and {holdout_part}."
