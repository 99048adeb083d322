"""The campaign manager's home: experiments and their analyses.

Buttons (admin actions) call the same requests as the API (jobs.requests);
heavy work is queued as tasks whose progress shows under Task runs.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_actions import TaskActionsMixin, action_report
from core.admin_audit import AuditedAdmin
from core.admin_readonly import SnapshotAdmin
from core.audit import audit_task_run
from core.models import TaskRun
from core.plots import ForestRow, forest_plot, interval_bars, line_chart
from core.units import CURRENCY
from experiments.models import AnalysisResult, Arm, Experiment, Metric
from experiments.results import (
    analysis_payload_public,
    effect_history,
    experiment_arm_counts,
    metric_units,
    model_insight,
    next_step,
    result_rows,
    segment_labels,
    segment_rows,
    view_for,
)
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
class ExperimentAdmin(TaskActionsMixin, AuditedAdmin):
    """Status moves only by the Start and Stop actions (experiments.services.experiment_transition)."""

    form = ExperimentForm
    list_display = ["name", "key", "campaign", "status", "layer", "started_at", "latest_decision",
                    "overview_link"]
    list_filter = ["status", "layer"]
    inlines = [ArmInline, MetricInline]
    actions = ["start", "stop", "analyse", "train"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["status", "salt", "started_at", "ended_at", "created_at"]
        return fixed if _is_draft(obj) else [*fixed, *FIXED_AFTER_START]

    @admin.action(description="Start the selected draft experiments", permissions=["change"])
    def start(self, request, queryset):
        action_report(request, lambda e: experiment_transition(
            experiment=e, to=Experiment.Status.RUNNING), queryset, "Started.", audit="start")

    @admin.action(description="Stop the selected running experiments", permissions=["change"])
    def stop(self, request, queryset):
        action_report(request, lambda e: experiment_transition(
            experiment=e, to=Experiment.Status.STOPPED), queryset, "Stopped.", audit="stop")

    @admin.display(description="Latest decision")
    def latest_decision(self, obj):
        latest = obj.analyses.order_by("-created_at", "-id").first()
        if latest is None:
            return "-"
        url = reverse("admin:experiments_analysisresult_change", args=[latest.id])
        return format_html('<a href="{}">{}</a>', url, latest.decision.replace("_", " "))

    @admin.display(description="Results")
    def overview_link(self, obj):
        url = reverse("admin:experiments_experiment_overview", args=[obj.id])
        return format_html('<a href="{}">Results and next step</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/overview/", view(self.overview_view),
                 name="experiments_experiment_overview"),
            path("<int:pk>/transition/<str:to>/", view(self.transition_view),
                 name="experiments_experiment_transition"),
            path("<int:pk>/run/<str:job>/", view(self.run_view),
                 name="experiments_experiment_run"),
            path("task-run/<int:run_id>/progress/", view(self.progress_view),
                 name="experiments_experiment_progress"),
            *super().get_urls()]

    def overview_view(self, request, pk):
        """Status, arms, the decision and what to do next, then the results (one page)."""
        experiment = get_object_or_404(Experiment.objects.select_related("campaign"), pk=pk)
        if not self.has_view_or_change_permission(request, experiment):
            raise PermissionDenied
        latest = experiment.analyses.order_by("-created_at", "-id").first()
        counts = experiment_arm_counts(experiment)
        arms = [{"name": a.name, "weight": a.weight, "is_control": a.is_control,
                 "customers": counts.get(a.id, 0)} for a in experiment.arms.order_by("id")]
        total_weight = sum(a["weight"] for a in arms) or 1.0
        for a in arms:
            a["share"] = a["weight"] / total_weight
        can_run = self.has_run_tasks_permission(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": experiment.name, "experiment": experiment,
            "arms": arms, "assigned": sum(counts.values()),
            "can_run": can_run, "can_change": self.has_change_permission(request, experiment),
            "task_run": _task_run_of(request),
            **results_context(request, experiment, latest),
        }
        context["next_step"] = next_step(experiment, latest, context["insight"])
        return TemplateResponse(request, "admin/experiments/experiment/overview.html", context)

    @staticmethod
    def _back(experiment, **query):
        url = reverse("admin:experiments_experiment_overview", args=[experiment.id])
        return redirect(f"{url}?{'&'.join(f'{k}={v}' for k, v in query.items())}"
                        if query else url)

    def transition_view(self, request, pk, to):
        """POST: Start or Stop through experiment_transition; needs the change permission."""
        experiment = get_object_or_404(Experiment, pk=pk)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied
        target = {"start": Experiment.Status.RUNNING, "stop": Experiment.Status.STOPPED}.get(to)
        if target is None:
            raise PermissionDenied
        action_report(request, lambda e: experiment_transition(experiment=e, to=target),
                      [experiment], "Started." if to == "start" else "Stopped.",
                      audit="start" if to == "start" else "stop")
        return self._back(experiment)

    def run_view(self, request, pk, job):
        """POST: queue Analyse now or Train now; needs core.run_tasks. Never waits for the work."""
        experiment = get_object_or_404(Experiment, pk=pk)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_run_tasks_permission(request):
            raise PermissionDenied
        requests = {"analyse": experiment_analyse_request, "train": uplift_model_train_request}
        if job not in requests:
            raise PermissionDenied
        try:
            with transaction.atomic():
                run = requests[job](experiment=experiment)
                audit_task_run(run, request=request)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return self._back(experiment)
        return self._back(experiment, run=run.id)

    def progress_view(self, request, run_id):
        """JSON for the progress box: status, progress, step, and where the result is."""
        if not request.user.has_perm("core.view_taskrun"):
            raise PermissionDenied
        return JsonResponse(task_run_state(get_object_or_404(TaskRun, pk=run_id)))

    @admin.action(description="Analyse now (background task)", permissions=["run_tasks"])
    def analyse(self, request, queryset):
        action_report(request, lambda e: experiment_analyse_request(experiment=e), queryset,
                "Analysis queued; see Task runs for progress.", audit="run")

    @admin.action(description="Train the default uplift model (background task)", permissions=["run_tasks"])
    def train(self, request, queryset):
        action_report(request, lambda e: uplift_model_train_request(experiment=e), queryset,
                "Training queued; see Task runs and Model versions.", audit="run")


@admin.register(AnalysisResult)
class AnalysisResultAdmin(SnapshotAdmin):
    list_display = ["experiment", "created_at", "customers", "decision", "srm_p_value"]
    list_filter = ["decision", "experiment"]
    readonly_fields = ["experiment", "created_at", "task_run", "customers", "decision",
                       "decision_reasons", "srm_p_value"]
    exclude = ["payload"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        result = get_object_or_404(AnalysisResult.objects.select_related("experiment"),
                                   pk=object_id)
        context = results_context(request, result.experiment, result)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}),
                                                                  **context})


def _task_run_of(request) -> dict | None:
    """The state of the run named by ``?run=`` (the one just queued), for the progress box."""
    run_id = request.GET.get("run", "")
    run = TaskRun.objects.filter(pk=run_id).first() if run_id.isdigit() else None
    return task_run_state(run) if run is not None else None


def task_run_state(run: TaskRun) -> dict:
    """What the progress box shows (templates/admin/includes/task_progress.html), as JSON.

    ``error`` is the error's first line (the traceback stays on the run's page).
    """
    return {"id": run.id, "name": run.name, "status": run.status, "progress": run.progress,
            "step": run.step, "error": (run.error or "").split("\n", 1)[0],
            "done": run.status in (TaskRun.Status.SUCCEEDED, TaskRun.Status.FAILED),
            "result_url": task_run_result_url(run),
            "url": reverse("admin:experiments_experiment_progress", args=[run.id])}


def task_run_result_url(run: TaskRun) -> str | None:
    """Where a finished run's result is shown in the admin."""
    if run.status != TaskRun.Status.SUCCEEDED:
        return None
    result = run.result or {}
    if result.get("targeting_list_id"):
        return reverse("admin:modelling_targetinglist_change", args=[result["targeting_list_id"]])
    if result.get("analysis_result_id"):
        return reverse("admin:experiments_analysisresult_change",
                       args=[result["analysis_result_id"]])
    if result.get("model_version_ids"):
        return reverse("admin:modelling_modelversion_change",
                       args=[result["model_version_ids"][0]])
    if run.params.get("model_version_id"):
        return reverse("admin:modelling_modelversion_change",
                       args=[run.params["model_version_id"]])
    return reverse("admin:core_taskrun_change", args=[run.id])


def _axis_kind(unit: str) -> str:
    """core.plots' axis kind for an effect unit (core.units)."""
    return {"pp": "pp", "money": "money"}.get(unit, "number")


_EFFECT_TITLE = {"pp": "Effect (pp)", "money": f"Effect per customer ({CURRENCY})",
                 "count": "Effect per customer (events)"}


def results_context(request, experiment: Experiment, result: AnalysisResult | None) -> dict:
    """The results, per-segment effects and history of one snapshot, in one inference view."""
    if result is None:
        return {"result": None, "insight": model_insight(experiment, [])}
    view = view_for(experiment, request.GET.get("view"))
    payload = result.payload
    units = metric_units(experiment)
    blocks = result_rows(payload, view=view, sequential_design=experiment.sequential_testing,
                         units=units)
    history = effect_history(experiment, view=view)
    for block in blocks:
        kind = _axis_kind(block.unit)
        block.chart = interval_bars(
            labels=[r.arm for r in block.rows], values=[r.effect for r in block.rows],
            lower=[r.low for r in block.rows], upper=[r.high for r in block.rows],
            y_title=_EFFECT_TITLE[block.unit], y_kind=kind, height=240)
        block.history = []
        for row in block.rows:
            series = history.get((block.name, row.arm))
            if series and len(series["x"]) > 1:
                block.history.append((row.arm, line_chart(
                    x=series["x"], y=series["y"], lower=series["low"], upper=series["high"],
                    x_title="Analysis date", y_title=f"Effect of {row.arm} on {block.name}",
                    x_kind="date", y_kind=kind, height=260)))
    labels = segment_labels(payload)
    insight = model_insight(experiment, labels)
    # Intervals from every segment (the correction counts them all); small cells not shown.
    suppressed = [s for s in analysis_payload_public(payload)["segments"] if s["suppressed"]]
    hidden = {s["segment"] for s in suppressed}
    rows = [r for r in segment_rows(payload, insight) if r.segment not in hidden]
    query = (request.GET.get("segment") or "").strip().lower()
    show_all = request.GET.get("segments") == "all"
    forests = []
    for block in blocks:
        for arm in [r.arm for r in block.rows]:
            cells = [r for r in rows if r.metric == block.name and r.arm == arm]
            if query:
                cells = [r for r in cells if query in r.segment.lower()]
            shown = cells if show_all else [r for r in cells if r.significant]
            forests.append({
                "metric": block.name, "arm": arm, "total": len(cells), "rows": shown,
                "chart": forest_plot(
                    [ForestRow(r.segment, r.effect, r.low, r.high, second=r.predicted)
                     for r in shown if r.effect is not None],
                    x_title=f"Effect of {arm} on {block.name}",
                    x_kind=_axis_kind(block.unit),
                    estimate_name="Observed effect (interval adjusted for all segments)",
                    second_name="Model's predicted uplift") if shown else None})
    warnings = []
    srm = payload.get("srm") or {}
    if srm.get("mismatch"):
        warnings.append("Sample ratio mismatch: the arms did not get the customers their weights "
                        f"promise (p = {srm.get('p_value', 0):.2g}). Check assignment before "
                        "trusting any result below.")
    for block in blocks:
        if block.harmed:
            arms_harmed = ", ".join(r.arm for r in block.rows if r.verdict.startswith("harmed"))
            warnings.append(f"Guardrail harmed: {block.name} is worse under {arms_harmed}.")
    other_view = "fixed" if view == "sequential" else "sequential"
    return {"result": result, "payload": payload, "view": view, "other_view": other_view,
            "blocks": blocks, "forests": forests, "insight": insight, "warnings": warnings,
            "segment_query": request.GET.get("segment", ""), "show_all_segments": show_all,
            "segment_total": len(labels), "segments_suppressed": suppressed}
