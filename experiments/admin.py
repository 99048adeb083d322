"""The campaign manager's home: experiments and their analyses.

Buttons (admin actions) call the same requests as the API (jobs.requests);
heavy work is queued as tasks whose progress shows under Task runs.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html

from core.admin_actions import TaskActionsMixin, action_report
from core.admin_readonly import SnapshotAdmin
from core.charts import svg_line_chart
from experiments.models import AnalysisResult, Arm, Experiment, Metric
from experiments.services import (
    ArmSpec,
    MetricSpec,
    experiment_design_validate,
    experiment_transition,
)
from jobs.requests import experiment_analyse_request, uplift_model_train_request

# Fields that decide who is assigned to which arm, or what is measured:
# changing them once customers are assigned would mix two designs in one test.
FIXED_AFTER_START = ["campaign", "key", "eligibility_segment", "layer", "traffic_fraction",
                     "attribution_window_days"]


def _is_draft(experiment) -> bool:
    return experiment is None or experiment.status == Experiment.Status.DRAFT


class DesignFormSet(BaseInlineFormSet):
    """Arms or metrics of one experiment, checked together by experiment_design_validate.

    The admin validates the arms formset, then the metrics formset, both
    bound to the experiment form's instance; the second to be cleaned sees
    both halves of the design and runs the service's rules on the whole, so
    an experiment is saved with its arms and metrics or not at all.
    """

    part = ""  # "arms" or "metrics"

    def specs(self) -> list:
        raise NotImplementedError

    def clean(self):
        super().clean()
        if not _is_draft(self.instance) or any(self.errors):
            return
        design = self.instance.__dict__.setdefault("_admin_design", {})
        design[self.part] = self
        if set(design) != {"arms", "metrics"}:
            return
        arms, metrics = design["arms"], design["metrics"]
        if any(arms.errors) or arms.non_form_errors():
            return
        try:
            experiment_design_validate(
                arms=arms.specs(), metrics=metrics.specs(),
                breakdown_attributes=self.instance.breakdown_attributes or [])
        except ValidationError as exc:
            messages = [f"{key.replace('_', ' ')}: {m}" for key, ms in exc.message_dict.items()
                        for m in ms]
            # Shown at the top of this inline; the experiment is not saved.
            raise ValidationError(["The experiment was not saved.", *messages]) from None

    def _kept(self) -> list[dict]:
        return [f.cleaned_data for f in self.forms
                if f.cleaned_data and not f.cleaned_data.get("DELETE")]


class ArmFormSet(DesignFormSet):
    part = "arms"

    def specs(self) -> list[ArmSpec]:
        return [ArmSpec(name=d["name"], weight=d["weight"], is_control=d.get("is_control", False),
                        contacts_customer=d.get("contacts_customer", True))
                for d in self._kept()]


class MetricFormSet(DesignFormSet):
    part = "metrics"

    def specs(self) -> list[MetricSpec]:
        return [MetricSpec(name=d["name"], event_kind=d["event_kind"],
                           aggregation=d["aggregation"], role=d["role"])
                for d in self._kept()]


class _DesignInline(admin.TabularInline):
    """Editable while the experiment is a draft; fixed once it has started."""

    extra = 0

    def has_add_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_delete_permission(request, obj)


class ArmInline(_DesignInline):
    model = Arm
    formset = ArmFormSet
    fields = ["name", "weight", "is_control", "contacts_customer", "cost_per_contact",
              "cost_per_conversion"]


class MetricInline(_DesignInline):
    model = Metric
    formset = MetricFormSet


class ExperimentForm(forms.ModelForm):
    """The admin builds the form for Experiment from this (fields from the admin)."""

    def clean_breakdown_attributes(self):
        value = self.cleaned_data.get("breakdown_attributes")
        if value in (None, ""):
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError("must be a list of attribute keys")
        return value


@admin.register(Experiment)
class ExperimentAdmin(TaskActionsMixin, admin.ModelAdmin):
    """Status moves only by the Start and Stop actions (experiments.services.experiment_transition)."""

    form = ExperimentForm
    list_display = ["name", "key", "campaign", "status", "layer", "started_at", "latest_decision"]
    list_filter = ["status", "layer"]
    inlines = [ArmInline, MetricInline]
    actions = ["start", "stop", "analyse", "train"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["status", "salt", "started_at", "ended_at", "created_at"]
        return fixed if _is_draft(obj) else [*fixed, *FIXED_AFTER_START]

    @admin.action(description="Start the selected draft experiments", permissions=["change"])
    def start(self, request, queryset):
        action_report(request, lambda e: experiment_transition(
            experiment=e, to=Experiment.Status.RUNNING), queryset, "Started.")

    @admin.action(description="Stop the selected running experiments", permissions=["change"])
    def stop(self, request, queryset):
        action_report(request, lambda e: experiment_transition(
            experiment=e, to=Experiment.Status.STOPPED), queryset, "Stopped.")

    @admin.display(description="Latest decision")
    def latest_decision(self, obj):
        latest = obj.analyses.order_by("-created_at", "-id").first()
        if latest is None:
            return "-"
        url = reverse("admin:experiments_analysisresult_change", args=[latest.id])
        return format_html('<a href="{}">{}</a>', url, latest.decision.replace("_", " "))

    @admin.action(description="Analyse now (background task)", permissions=["run_tasks"])
    def analyse(self, request, queryset):
        action_report(request, lambda e: experiment_analyse_request(experiment=e), queryset,
                "Analysis queued; see Task runs for progress.")

    @admin.action(description="Train the default uplift model (background task)", permissions=["run_tasks"])
    def train(self, request, queryset):
        action_report(request, lambda e: uplift_model_train_request(experiment=e), queryset,
                "Training queued; see Task runs and Model versions.")


@admin.register(AnalysisResult)
class AnalysisResultAdmin(SnapshotAdmin):
    list_display = ["experiment", "created_at", "customers", "decision", "srm_p_value"]
    list_filter = ["decision", "experiment"]
    readonly_fields = ["experiment", "created_at", "task_run", "customers", "decision",
                       "decision_reasons", "srm_p_value"]
    exclude = ["payload"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        result = get_object_or_404(AnalysisResult, pk=object_id)
        history = list(AnalysisResult.objects.filter(experiment=result.experiment)
                       .order_by("created_at", "id"))
        primary = next((m for m in result.payload["metrics"] if m["role"] == "primary"), None)
        series = {}
        if primary:
            for arm in (c["arm"] for c in primary["comparisons"]):
                xs, ys = [], []
                for i, snapshot in enumerate(history):
                    for m in snapshot.payload["metrics"]:
                        for c in m["comparisons"] if m["metric"] == primary["metric"] else []:
                            if c["arm"] == arm:
                                xs.append(i + 1)
                                ys.append(c["unadjusted"]["absolute_effect"])
                series[arm] = (xs, ys)
        context = {"payload": result.payload,
                   "history_chart": svg_line_chart(series, x_label="snapshot",
                                                   y_label="effect") if len(history) > 1
                   else None}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}),
                                                                  **context})
