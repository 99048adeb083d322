"""The targeting page (a form over targeting_list_create) and a list's summary for managers.

The form is a thin shell: every field maps to one keyword of
modelling.targeting.targeting_list_create, the service the API calls, and a
blank field means "the default" (the campaign's or the arm's own number).
The summary reads only the stored list (its parameters, counts and held-out
evaluation), so the list's page costs the same few queries at any size.
"""

from __future__ import annotations

from django import forms

from core.plots import GREY, ORANGE, line_chart
from marketing.models import Segment
from modelling.models import ModelVersion, TargetingList

BASELINE_LABELS = {"random": "Random (same size and arm mix)",
                   "response_top": "Response model (most likely to convert)",
                   "no_one": "No one"}


def _guardrail_kinds(version: ModelVersion) -> dict[str, str]:
    """Guardrail metric name -> event kind, for the guardrails the version can predict."""
    return {name: entry["event_kind"]
            for name, entry in (version.metrics.get("guardrails") or {}).items()
            if entry.get("model") and entry.get("event_kind")}


def arm_names(version: ModelVersion) -> list[str]:
    return list(version.metrics.get("arm_names", []))[1:]


class TargetingForm(forms.Form):
    """Budget, caps and prices for one model version; per-arm and per-kind fields are added."""

    budget = forms.FloatField(required=False, min_value=0, label="Budget",
                              help_text="Most money to spend; blank: no budget.")
    max_contacts = forms.IntegerField(required=False, min_value=0, label="Contact cap",
                                      help_text="Most customers to contact; blank: no cap.")
    segment = forms.ModelChoiceField(queryset=Segment.objects.order_by("name"), required=False,
                                     empty_label="Everyone eligible",
                                     help_text="Only members of this segment.")

    def __init__(self, *args, version: ModelVersion, **kwargs):
        super().__init__(*args, **kwargs)
        self.version = version
        campaign = version.campaign
        arms = ({} if version.experiment_id is None
                else {a.name: a for a in version.experiment.arms.all()})
        self.fields["budget"].initial = campaign.budget
        self.arm_rows = []
        for name in arm_names(version):
            arm = arms.get(name)
            contact = getattr(arm, "cost_per_contact", None)
            self.fields[f"cost_{name}"] = forms.FloatField(
                required=False, min_value=0, label=f"{name}: cost per contact",
                initial=campaign.cost_per_contact if contact is None else contact)
            self.fields[f"conversion_cost_{name}"] = forms.FloatField(
                required=False, min_value=0, label=f"{name}: cost per conversion",
                initial=getattr(arm, "cost_per_conversion", None) or 0)
            self.fields[f"capacity_{name}"] = forms.IntegerField(
                required=False, min_value=0, label=f"{name}: capacity",
                help_text="Most customers in this arm; blank: no limit.")
            self.arm_rows.append((name, self[f"cost_{name}"], self[f"conversion_cost_{name}"],
                                  self[f"capacity_{name}"]))
        self.harm_rows = []
        for metric, kind in sorted(_guardrail_kinds(version).items()):
            field = f"harm_price_{kind}"
            if field in self.fields:
                continue
            self.fields[field] = forms.FloatField(
                required=False, min_value=0, label=f"Price of one extra {kind}",
                initial=(campaign.harm_prices or {}).get(kind, 0))
            self.harm_rows.append((metric, kind, self[field]))

    def service_kwargs(self) -> dict:
        """The cleaned form as targeting_list_create's keywords (blank: the default)."""
        data = self.cleaned_data
        names = arm_names(self.version)
        capacity = {n: data[f"capacity_{n}"] for n in names if data[f"capacity_{n}"] is not None}
        prices = {kind: data[f"harm_price_{kind}"] for _, kind, _ in self.harm_rows
                  if data[f"harm_price_{kind}"] is not None}
        return {
            "campaign": self.version.campaign, "model_version": self.version,
            "budget": data["budget"], "max_contacts": data["max_contacts"],
            "segment": data["segment"], "arm_capacity": capacity or None,
            "cost_per_contact_by_arm": {n: data[f"cost_{n}"] for n in names},
            "cost_per_conversion_by_arm": {n: data[f"conversion_cost_{n}"] for n in names},
            # Kinds left blank keep the campaign's price.
            "harm_prices": {**(self.version.campaign.harm_prices or {}), **prices}
            if prices else None,
        }


def _policy_row(label: str, entry: dict, *, kind: str) -> dict:
    profit = entry.get("priced_profit") or entry["profit"]
    return {"label": label, "kind": kind, "contacts": entry["contacts"],
            "by_arm": entry.get("contacts_by_arm", {}), "profit": profit,
            "predicted": entry.get("predicted", {}).get("profit"),
            "true": (entry.get("true") or {}).get("profit")}


def targeting_summary(target: TargetingList) -> dict:
    """What a manager reads at a glance, from the stored list only (no entry is read).

    ``held_out``: the policy on the version's held-out customers (modelling.
    targeting_evaluation): its DR profit with the 95% interval beside the
    model's own prediction for the same customers. ``comparison``: the
    policy and each baseline at the same budget on those customers.
    """
    parameters = target.parameters or {}
    eligible = parameters.get("eligible") or 0
    evaluation = target.evaluation or {}
    summary = {
        "size": target.size, "eligible": eligible,
        "share": target.size / eligible if eligible else None,
        "by_arm": sorted((target.contacts_by_arm or {}).items(), key=lambda kv: -kv[1]),
        "harm": sorted((target.guardrail_harm or {}).items()),
        "available": bool(evaluation.get("available")),
        "reason": evaluation.get("reason", ""),
    }
    if not summary["available"]:
        return summary
    policies = evaluation["policies"]
    policy = policies["uplift_policy"]
    rows = [_policy_row("This list's policy", policy, kind="policy")]
    rows += [_policy_row(f"Everyone in {name.removeprefix('everyone_')}", entry, kind="arm")
             for name, entry in policies.items() if name.startswith("everyone_")]
    rows += [_policy_row(label, policies[name], kind=name) for name, label in
             BASELINE_LABELS.items() if name in policies]
    best = max(rows[1:], key=lambda r: r["profit"]["value"], default=None)
    summary.update({
        "rows": evaluation["rows"], "priced": "priced_profit" in policy,
        "held_out": rows[0], "comparison": rows, "best_baseline": best,
        "beats_best": best is not None and rows[0]["profit"]["low"] > best["profit"]["value"],
        "has_truth": any(r["true"] is not None for r in rows),
        "response_baseline": evaluation.get("response_baseline", ""),
        "harm_held_out": sorted((policy.get("guardrail_harm") or {}).items()),
    })
    return summary


def profit_curve_figure(target: TargetingList) -> dict | None:
    """Held-out profit against customers contacted: the policy and each arm, with 95% bands.

    Both axes are on the held-out customers (the same rows as the comparison
    table). Without an evaluation, the model's own predicted curve over the
    whole list is drawn instead (no band: it is a prediction, not a measurement).
    """
    evaluation = target.evaluation or {}
    if not evaluation.get("available"):
        curve = target.profit_curve or {}
        if not curve.get("contacts"):
            return None
        return line_chart(x=curve["contacts"], y=curve["profit"], x_kind="count", y_kind="money",
                          x_title="Customers contacted (best first)",
                          y_title="Expected profit (model's prediction)")
    curves = evaluation["curves"]
    overall = curves["overall"]
    figure = line_chart(x=overall["contacts"], y=overall["profit"], lower=overall["low"],
                        upper=overall["high"], x_kind="count", y_kind="money",
                        x_title="Held-out customers contacted (best predicted profit first)",
                        y_title="Profit on held-out customers", name="This list's policy",
                        band_name="Policy: 95% interval", height=380)
    colours = [ORANGE, GREY, "#2f855a", "#6b46c1"]
    for (name, curve), colour in zip(sorted(curves.get("arms", {}).items()),
                                     colours, strict=False):
        fill = colour.lstrip("#")
        rgba = f"rgba({int(fill[0:2], 16)},{int(fill[2:4], 16)},{int(fill[4:6], 16)},0.08)"
        figure["data"] += [
            {"type": "scatter", "mode": "lines", "x": curve["contacts"], "y": curve["low"],
             "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False},
            {"type": "scatter", "mode": "lines", "x": curve["contacts"], "y": curve["high"],
             "line": {"width": 0}, "fill": "tonexty", "fillcolor": rgba, "hoverinfo": "skip",
             "showlegend": False},
            {"type": "scatter", "mode": "lines", "x": curve["contacts"], "y": curve["profit"],
             "name": f"Only {name}", "line": {"color": colour, "width": 2, "dash": "dot"}}]
    xs = overall["contacts"]
    if xs:
        figure["data"].append({"type": "scatter", "mode": "lines", "x": [xs[0], xs[-1]],
                               "y": [0, 0], "name": "No one",
                               "line": {"color": "#a0aec0", "width": 1}})
    return figure


def parameter_tables(target: TargetingList) -> dict:
    """The stored parameters as rows: one per arm, one per priced guardrail."""
    p = target.parameters or {}
    capacity = p.get("arm_capacity") or {}
    chosen = target.contacts_by_arm or {}
    arms = [{"name": name, "cost": cost,
             "conversion": (p.get("cost_per_conversion_by_arm") or {}).get(name),
             "capacity": capacity.get(name), "chosen": chosen.get(name, 0)}
            for name, cost in (p.get("cost_per_contact_by_arm") or {}).items()]
    caps = p.get("harm_caps") or {}
    harms = [{"name": name, "price": price, "cap": caps.get(name)}
             for name, price in (p.get("harm_prices") or {}).items()]
    return {"arm_table": arms, "harm_table": harms}
