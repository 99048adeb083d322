"""Target lists: scores + campaign economics -> whom to contact, and with what.

The one place that turns scores into a contact decision (models_dl.policy
does the arithmetic). Only customers with marketing consent who have not
been erased are eligible; an optional segment narrows the list further.

Per customer ``i`` and treatment arm ``k`` the decision uses (see
models_dl.policy for the rule and the knapsack):

    profit_ik = value * uplift_ik - cost_k - conversion_cost_k * treated_ik
                - sum_g price_g * harm_ikg

``uplift_ik`` and ``treated_ik = response_i + uplift_ik`` (the predicted
outcome under arm k: scoring stores the control outcome as ``response`` and
the effects, so the sum is the model's own per-arm prediction) come from the
scores, ``harm_ikg`` from ``guardrail_by_arm`` (the guardrail models'
effects, sign-flipped for a metric where higher is better). ``cost_k`` is
the arm's cost per contact (else the ``cost_per_contact`` given, else the
campaign's), ``conversion_cost_k`` the arm's cost per conversion (else 0),
``price_g`` / the cap on expected extra events the campaign's
``harm_prices`` / ``harm_caps`` for the metric's event kind. A customer with
``profit_ik <= 0`` in every arm is never contacted.

Scores are read in id chunks straight into numpy columns (core.db.columnar:
the JSON numbers are extracted in SQL), never a Python object per customer. Entries hold plain columns only
(binary COPY, no JSON for the server to parse); the per-arm uplift the CSV
and the API show is joined from the version's scores, where it already is.
Every list also carries a held-out evaluation (modelling.targeting_evaluation).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from core.db.bulk import frame_insert
from core.db.columnar import columns_fetch
from core.db.sql_tuning import large_aggregates
from marketing.models import Campaign, Customer, Segment
from marketing.segment_rules import segment_members
from modelling.economics import Economics, economics_build, select
from modelling.models import CustomerScore, ModelVersion, TargetingEntry, TargetingList
from modelling.registry import champion
from modelling.targeting_evaluation import targeting_evaluate

READ_CHUNK = 200_000


@transaction.atomic
def targeting_list_create(
    *, campaign: Campaign, model_version: ModelVersion | None = None,
    budget: float | None = None, max_contacts: int | None = None,
    segment: Segment | None = None, cost_per_contact: float | None = None,
    value_per_conversion: float | None = None, arm_capacity: Mapping[str, int] | None = None,
    harm_prices: Mapping[str, float] | None = None, harm_caps: Mapping[str, float] | None = None,
    cost_per_contact_by_arm: Mapping[str, float] | None = None,
    cost_per_conversion_by_arm: Mapping[str, float] | None = None,
    evaluate: bool = True,
) -> TargetingList:
    """Build and store a list. Defaults: the campaign's champion and its economics.

    ``cost_per_contact`` replaces the campaign's for arms without their own;
    ``arm_capacity``: arm name -> most customers in that arm; ``harm_prices``
    / ``harm_caps``: event kind -> number, replacing the campaign's;
    ``cost_per_contact_by_arm`` / ``cost_per_conversion_by_arm``: arm name ->
    money, replacing the arm's own (the targeting page's per-arm costs).
    ``evaluate=False`` skips the held-out evaluation (benchmarks).
    """
    version = model_version or champion(campaign.id, ModelVersion.Kind.UPLIFT)
    if version is None:
        raise ValidationError({"model_version": f"campaign {campaign.key} has no champion "
                                                "uplift model; train one first"})
    if version.campaign_id != campaign.id or version.kind != ModelVersion.Kind.UPLIFT:
        raise ValidationError({"model_version": "must be an uplift model of this campaign"})
    econ = economics_build(
        campaign=campaign, version=version, budget=budget, max_contacts=max_contacts,
        cost_per_contact=cost_per_contact, value_per_conversion=value_per_conversion,
        arm_capacity=arm_capacity, harm_prices=harm_prices, harm_caps=harm_caps,
        cost_by_arm=cost_per_contact_by_arm, conversion_cost_by_arm=cost_per_conversion_by_arm)
    ids, uplift, response, guard = _scores_read(version, econ, segment)
    treated = np.clip(np.nan_to_num(response)[:, None] + uplift, 0.0, None)
    try:
        decision = select(econ, uplift, treated, guard)
    except ValueError as error:
        raise ValidationError({"parameters": str(error)}) from error

    order, arm = decision.order, decision.arm
    names = np.asarray(econ.arm_names, dtype=object)
    chosen_uplift = uplift[order, arm[order]]
    digest = _digest(ids[order], econ.arm_names, arm[order])
    parameters = {
        "cost_per_contact": econ.default_cost, "value_per_conversion": econ.value,
        "budget": econ.budget, "max_contacts": econ.max_contacts, "eligible": int(ids.size),
        "cost_per_contact_by_arm": dict(zip(econ.arm_names, econ.cost.tolist(), strict=True)),
        "cost_per_conversion_by_arm": dict(zip(econ.arm_names, econ.conversion_cost.tolist(),
                                        strict=True)),
        "arm_capacity": None if econ.arm_capacity is None else dict(zip(
            econ.arm_names, [None if np.isinf(c) else int(c) for c in econ.arm_capacity],
            strict=True)),
        "harm_prices": dict(zip(econ.guardrails, econ.guard_price.tolist(), strict=True)),
        "harm_caps": dict(zip(econ.guardrails, [None if np.isinf(c) else c
                                                for c in econ.guard_cap.tolist()], strict=True)),
    }
    target = TargetingList.objects.create(
        campaign=campaign, model_version=version, segment=segment, parameters=parameters,
        size=int(order.size), total_cost=decision.total_cost,
        expected_profit=decision.total_expected_profit,
        expected_conversions=float(chosen_uplift.sum()),
        profit_curve={"contacts": decision.curve_contacts.tolist(),
                      "profit": decision.curve_profit.tolist()},
        contacts_by_arm=dict(zip(econ.arm_names, decision.contacts_by_arm.tolist(),
                                 strict=True)),
        guardrail_harm=dict(zip(econ.guardrails, decision.guardrail_total.tolist(),
                                strict=True)),
        digest=digest,
        evaluation=_evaluation(version, campaign, econ, int(ids.size)) if evaluate
        else {"available": False, "reason": "not requested"},
    )
    frame_insert(TargetingEntry, pd.DataFrame({
        "targeting_list_id": target.id, "customer_id": ids[order],
        "rank": np.arange(1, order.size + 1), "arm": names[arm[order]],
        "uplift": chosen_uplift, "expected_profit": decision.expected_profit,
    }))
    return target


def _evaluation(version: ModelVersion, campaign: Campaign, econ: Economics, eligible: int) -> dict:
    if not version.artifact_path:
        return {"available": False, "reason": "the model version has no artifact"}
    try:
        return targeting_evaluate(version=version, campaign=campaign, econ=econ,
                                  eligible=eligible)
    except (ValueError, FileNotFoundError) as error:
        # The list stands; the reason the experiment cannot judge it is recorded.
        return {"available": False, "reason": f"{type(error).__name__}: {error}"}


def _score_columns(econ: Economics) -> tuple[str, list[str]]:
    """The SELECT list of the per-arm numbers (uplifts, then harms by guardrail), its parameters.

    PostgreSQL casts ``jsonb -> key`` to float8 directly. Measured on 200,000
    scores with two arms and one guardrail, that is faster than expanding each
    document once with a lateral ``jsonb_to_record`` (2.1 s against 2.8 s):
    the cost is the numeric-to-float conversion, which both pay per number.
    """
    keys = [("uplift_by_arm", (a,)) for a in econ.arm_names] + [
        ("guardrail_by_arm", (g, a)) for g in econ.guardrails for a in econ.arm_names]
    columns, params = [], []
    for column, path in keys:
        if connection.vendor == "postgresql":
            columns.append(f"CAST(s.{column}{''.join(' -> %s' for _ in path)} "
                           "AS DOUBLE PRECISION)")
            params += list(path)
        else:
            columns.append(f"CAST(json_extract(s.{column}, %s) AS REAL)")
            params.append("$" + "".join('."' + key.replace('"', '\\"') + '"' for key in path))
    return ", ".join(columns), params


def _scores_read(version: ModelVersion, econ: Economics, segment: Segment | None):
    """Eligible customers' ids, uplift (n, K), response (n,), harm (n, K, G), in id order."""
    numbers, number_params = _score_columns(econ)
    k, g = len(econ.arm_names), len(econ.guardrails)
    width = 2 + k * (1 + g)  # id, response, uplift per arm, harm per guardrail and arm
    where, where_params = "", []
    if segment is not None:
        members_sql, members_params = segment_members(
            segment.rule, as_of=timezone.now()).values("id").query.sql_with_params()
        where, where_params = f" AND s.customer_id IN ({members_sql})", list(members_params)
    score_table = connection.ops.quote_name(CustomerScore._meta.db_table)
    customer_table = connection.ops.quote_name(Customer._meta.db_table)
    sql = (f"SELECT s.customer_id, s.response, {numbers} FROM {score_table} s "
           f"JOIN {customer_table} c ON c.id = s.customer_id "
           "WHERE s.model_version_id = %s AND s.customer_id > %s AND c.marketing_consent = %s "
           f"AND c.erased_at IS NULL AND s.uplift IS NOT NULL{where} "
           "ORDER BY s.customer_id LIMIT %s")
    kinds = "i" + "f" * (width - 1)
    chunks, last = [], 0
    with large_aggregates():  # JIT off, a statement timeout: the segment may be large
        while True:
            columns = columns_fetch(sql, [*number_params, version.id, last, True,
                                          *where_params, READ_CHUNK], kinds, ordered=True)
            if columns[0].size:
                chunks.append(columns)
                last = int(columns[0][-1])
            if columns[0].size < READ_CHUNK:
                break
    if not chunks:
        return (np.empty(0, dtype=np.int64), np.empty((0, k)), np.empty(0),
                np.empty((0, k, g)))
    table = np.column_stack([np.concatenate([c[i] for c in chunks])
                             for i in range(1, width)])
    ids = np.concatenate([c[0] for c in chunks])
    uplift = table[:, 1:1 + k]
    guard = table[:, 1 + k:].reshape(ids.size, g, k).transpose(0, 2, 1) * econ.guard_sign
    if np.isnan(uplift).any() or np.isnan(guard).any():
        raise ValidationError({"model_version": "some scores lack a per-arm uplift or guardrail "
                                                "prediction: rescore the customers"})
    return ids, uplift, table[:, 0], guard


def _digest(customer_ids: np.ndarray, arm_names: list[str], arm: np.ndarray) -> str:
    """sha256 of "customer_id,arm,rank\\n" per entry in rank order (UTF-8).

    The lines are assembled as numpy byte strings and hashed as one buffer:
    fixed-width ``S`` arrays pad with NUL bytes, which no line contains
    (ids and ranks are digits, arm names are text), so dropping every NUL
    leaves exactly the lines back to back.
    """
    if not customer_ids.size:
        return hashlib.sha256(b"").hexdigest()
    names = np.array([name.encode() for name in arm_names], dtype=np.bytes_)
    lines = customer_ids.astype(np.bytes_)
    for part in (b",", names[arm], b",", np.arange(1, arm.size + 1).astype(np.bytes_), b"\n"):
        lines = np.char.add(lines, part)
    data = np.frombuffer(lines.tobytes(), dtype=np.uint8)
    return hashlib.sha256(data[data != 0].tobytes()).hexdigest()


CSV_COLUMNS = ["rank", "customer_external_id", "arm", "predicted_uplift", "expected_profit"]
# A cell a spreadsheet would read as a formula (or that hides one behind a
# tab or carriage return) is written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def targeting_entries(target: TargetingList) -> QuerySet[TargetingEntry]:
    """The list's entries, each annotated with ``uplift_by_arm`` ({arm: uplift}).

    The per-arm uplifts are the version's scores of the customer, joined
    here rather than copied onto every entry (a JSON document per entry made
    writing a list cost as much as choosing it). They are the numbers the
    list was chosen from unless the version has since rescored the customer;
    the chosen arm's uplift and the expected profit stay on the entry. None
    where the score is gone.

    Re-filtered at every read: a customer who withdrew consent or was erased
    since the list was built is never served (the list's stored totals still
    describe it as decided).
    """
    scores = CustomerScore.objects.filter(model_version_id=target.model_version_id,
                                          customer_id=OuterRef("customer_id"))
    return (TargetingEntry.objects.filter(targeting_list=target,
                                          customer__marketing_consent=True,
                                          customer__erased_at__isnull=True)
            .annotate(uplift_by_arm=Subquery(scores.values("uplift_by_arm")[:1])))


def targeting_list_csv(target: TargetingList, *, chunk_size: int = 10_000) -> Iterator[str]:
    """CSV lines (header first), streamed in chunks so large lists never sit in memory.

    Columns: rank, customer, chosen arm, its predicted uplift, expected profit,
    then ``uplift_<arm>`` per arm. Text cells are made formula-safe (csv_safe);
    numbers are formatted here and cannot start with a formula character
    except a minus sign, which is a number to a spreadsheet, not a formula.
    """
    arm_names = list(target.model_version.metrics.get("arm_names", []))[1:]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, *(csv_safe(f"uplift_{name}") for name in arm_names)])
    yield buffer.getvalue()
    entries = (targeting_entries(target).order_by("rank")
               .values_list("rank", "customer__external_id", "arm", "uplift", "expected_profit",
                            "uplift_by_arm"))
    for row in entries.iterator(chunk_size=chunk_size):
        buffer.seek(0)
        buffer.truncate()
        by_arm = row[5] or {}
        writer.writerow([row[0], csv_safe(row[1]), csv_safe(row[2]), f"{row[3]:.6f}",
                         f"{row[4]:.4f}",
                         *(f"{by_arm[name]:.6f}" if name in by_arm else "" for name in arm_names)])
        yield buffer.getvalue()
