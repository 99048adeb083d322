"""Model versions and the targeting lists built from them."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_actions import TaskActionsMixin, action_report
from core.admin_audit import AuditedAdmin
from core.admin_readonly import SnapshotAdmin
from core.audit import audit_record, audit_target, audit_task_run
from core.models import TaskRun
from core.plots import ForestRow, forest_plot, interval_bars
from experiments.admin import task_run_state
from jobs.requests import customers_score_request, targeting_list_request
from modelling.admin_targeting import (
    TargetingForm,
    parameter_tables,
    profit_curve_figure,
    targeting_summary,
)
from modelling.followup import (
    follow_up_plan_csv,
    follow_up_summary,
    targeting_follow_up_analyse,
    targeting_follow_up_create,
    targeting_follow_up_start,
)
from modelling.models import ModelVersion, TargetingFollowUp, TargetingList
from modelling.targeting import targeting_list_csv


@admin.register(ModelVersion)
class ModelVersionAdmin(TaskActionsMixin, SnapshotAdmin):
    list_display = ["id", "campaign", "kind", "estimator", "status", "selection_score",
                    "is_champion", "rows_train", "training_seconds", "created_at"]
    list_filter = ["kind", "status", "is_champion", "campaign"]
    exclude = ["metrics", "curves", "feature_reference", "explanations"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields
                       if f.name not in {"metrics", "curves", "feature_reference",
                                         "explanations"}]
    actions = ["score", "target"]

    @admin.action(description="Score all customers with this model (background task)",
                  permissions=["run_tasks"])
    def score(self, request, queryset):
        action_report(request, lambda v: customers_score_request(model_version=v), queryset,
                "Scoring queued; see Task runs.", audit="run")

    @admin.action(description="Create a targeting list (campaign costs and budget)",
                  permissions=["run_tasks"])
    def target(self, request, queryset):
        """Queue one build per version with the campaign's own costs; never builds in the request.

        With one version selected the browser goes to that build's progress
        page (the targeting form's); with several, each run's page is linked.
        """
        runs = []

        def queue(version):
            run = targeting_list_request(campaign=version.campaign, model_version=version)
            runs.append((version, run))
            return run

        action_report(request, queue, queryset, "Targeting list build queued.", audit="run")
        pages = [reverse("admin:modelling_modelversion_target_run", args=[v.id, run.id])
                 for v, run in runs]
        if len(pages) == 1:
            return redirect(pages[0])
        for (version, _), page in zip(runs, pages, strict=True):
            messages.info(request, format_html('Version {}: <a href="{}">follow the build</a>',
                                               version.id, page))
        return None

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:pk>/score/", view(self.score_view), name="modelling_modelversion_score"),
                path("<int:pk>/target/", view(self.target_view),
                     name="modelling_modelversion_target"),
                path("<int:pk>/target/run/<int:run_id>/", view(self.target_run_view),
                     name="modelling_modelversion_target_run"),
                *super().get_urls()]

    def _post_allowed(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_run_tasks_permission(request):
            raise PermissionDenied
        return None

    def score_view(self, request, pk):
        """POST: queue scoring (the experiment overview's Score now); never waits for it."""
        refused = self._post_allowed(request)
        if refused:
            return refused
        version = get_object_or_404(ModelVersion, pk=pk)
        back = reverse("admin:experiments_experiment_overview", args=[version.experiment_id]) \
            if version.experiment_id else reverse("admin:modelling_modelversion_change", args=[pk])
        try:
            with transaction.atomic():
                run = customers_score_request(model_version=version)
                audit_task_run(run, request=request)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return redirect(back)
        return redirect(f"{back}?run={run.id}")

    def target_view(self, request, pk):
        """The targeting page: GET shows the form, POST queues the build and shows its progress.

        The POST never builds the list itself: targeting_list_request checks
        the numbers (a bad one is shown on the form) and queues
        targeting_list_create, the API's service; the browser goes at once to
        the run's progress page. A POST without run_tasks is refused (403)
        whatever the page showed.
        """
        version = get_object_or_404(ModelVersion.objects.select_related("campaign", "experiment"),
                                    pk=pk)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        can_build = self.has_run_tasks_permission(request)
        if request.method == "POST":
            if not can_build:
                raise PermissionDenied
            form = TargetingForm(request.POST, version=version)
            if form.is_valid():
                try:
                    with transaction.atomic():
                        run = targeting_list_request(**form.service_kwargs())
                        audit_task_run(run, request=request)
                except ValidationError as exc:
                    named = exc.message_dict.items() if hasattr(exc, "error_dict") else [
                        ("", exc.messages)]
                    messages.error(request, "; ".join(
                        f"{field}: {m}" if field else m for field, ms in named for m in ms))
                else:
                    return redirect(reverse("admin:modelling_modelversion_target_run",
                                            args=[version.id, run.id]))
        else:
            form = TargetingForm(version=version)
        if not can_build:
            for field in form.fields.values():
                field.disabled = True
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": f"Build a target list: {version.campaign}", "version": version,
                   "form": form, "can_build": can_build}
        return TemplateResponse(request, "admin/modelling/modelversion/target.html", context)

    def target_run_view(self, request, pk, run_id):
        """The build's progress, polled until done; then the link to the new list."""
        version = get_object_or_404(ModelVersion.objects.select_related("campaign"), pk=pk)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        run = get_object_or_404(TaskRun, pk=run_id, name="targeting_list_build",
                                params__model_version_id=version.id)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": f"Building a target list: {version.campaign}", "version": version,
                   "task_run": task_run_state(run)}
        return TemplateResponse(request, "admin/modelling/modelversion/target_run.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = get_object_or_404(ModelVersion, pk=object_id)
        context = {"metrics": version.metrics, **model_version_charts(version),
                   "explanations": _explanations_display(version.explanations)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}),
                                                                  **context})


def _explanations_display(explanations: dict) -> dict:
    """The stored rules' value shares and the attribution method, worded for the template."""
    if not explanations or "error" in explanations:
        return explanations or {}
    shares = {kind: (f"{v['share']:.0%}" if v["share"] is not None else v["note"])
              for kind, v in explanations["rules"]["value_share"].items()}
    return {**explanations, "shares_display": shares,
            "method_text": explanations["method"].replace("_", " ")}


def _qini_figure(arm: str, curve: dict) -> dict:
    """Qini curve of the model against random targeting (the straight line to its end)."""
    x, q = curve.get("x") or [], curve.get("qini") or []
    end = q[-1] if q else 0.0
    random_line = [end * xi / x[-1] if x and x[-1] else 0.0 for xi in x]
    layout = {"template": "none", "height": 320, "margin": {"l": 70, "r": 20, "t": 20, "b": 50},
              "font": {"family": "system-ui, sans-serif", "size": 12},
              "xaxis": {"title": {"text": "Customers targeted, best predicted uplift first"},
                        "tickformat": ",d", "gridcolor": "#edf2f7"},
              "yaxis": {"title": {"text": f"Extra conversions from {arm} (Qini)"},
                        "tickformat": ",.3~g", "gridcolor": "#edf2f7"},
              "legend": {"orientation": "h", "y": -0.25}}
    data = [{"type": "scatter", "mode": "lines", "x": x, "y": q, "name": "Model",
             "line": {"color": "#2b6cb0", "width": 2}},
            {"type": "scatter", "mode": "lines", "x": x, "y": random_line,
             "name": "Random targeting", "line": {"color": "#718096", "dash": "dash"}}]
    return {"data": data, "layout": layout}


def model_version_charts(version: ModelVersion) -> dict:
    """Plotly figures for the model version page: Qini, calibration, explanations."""
    metrics = version.metrics or {}
    qini = {arm: _qini_figure(arm, curve) for arm, curve in (version.curves or {}).items()}
    # Conversion targets are rates (uplift in percentage points); others are amounts.
    rate = version.experiment_id is not None and version.experiment.metrics.filter(
        name=version.target_metric, aggregation="converted").exists()
    calibration = {}
    for arm, rows in (metrics.get("calibration") or {}).items():
        deciles = [r for r in rows if str(r.get("group", "")).startswith("decile")
                   and r.get("effect") is not None]
        calibration[arm] = forest_plot(
            [ForestRow(r["group"], r["effect"], r["ci_low"], r["ci_high"], second=r["predicted"])
             for r in reversed(deciles)], x_title=f"Uplift of {arm} on {version.target_metric}",
            sort=False,
            x_kind="pp" if rate else "number",
            estimate_name="Observed uplift (95% interval)",
            second_name="Predicted uplift") if deciles else None
    explanations = version.explanations or {}
    labels = explanations.get("labels", {})
    drivers = {}
    if "error" not in explanations:
        for arm, ranking in ((explanations.get("drivers") or {}).get("ranking") or {}).items():
            top = ranking[:10]
            # Mean absolute change in a customer's predicted uplift (models_dl.explain).
            drivers[arm] = interval_bars(
                labels=[labels.get(name, name) for name, _ in top],
                values=[size for _, size in top], y_title=f"Effect on the uplift of {arm}",
                y_kind="pp" if rate else "number")
    return {"qini_charts": qini, "calibration_charts": calibration, "driver_charts": drivers}


@admin.register(TargetingList)
class TargetingListAdmin(SnapshotAdmin):
    list_display = ["id", "campaign", "model_version", "size", "total_cost", "expected_profit",
                    "created_at", "csv_link"]
    list_filter = ["campaign"]
    # The JSON fields (parameters, counts, evaluation) are drawn as tables by the template.
    # Size, cost and profit are in the summary, formatted; these are the record.
    fields = ["campaign", "model_version", "segment", "digest", "created_at"]
    readonly_fields = fields
    actions = ["follow_up"]

    def has_follow_up_permission(self, request) -> bool:
        """A follow-up is a new experiment: the same permission as adding one."""
        return request.user.has_perm("experiments.add_experiment")

    @admin.action(description="Create a follow-up experiment (policy / random / holdout "
                              "45/45/10, left in draft)", permissions=["follow_up"])
    def follow_up(self, request, queryset):
        action_report(request, lambda t: targeting_follow_up_create(targeting_list=t), queryset,
                      "Follow-up experiment created in draft; see Targeting follow-ups.",
                      audit="create")

    def get_list_display(self, request):
        # No export permission, no link (the view would refuse it anyway).
        shown = super().get_list_display(request)
        if request.user.has_perm("modelling.export_targetinglist"):
            return shown
        return [name for name in shown if name != "csv_link"]

    @admin.display(description="Export")
    def csv_link(self, obj):
        url = reverse("admin:modelling_targetinglist_csv", args=[obj.id])
        return format_html('<a href="{}">CSV</a>', url)

    def get_urls(self):
        return [path("<int:pk>/csv/", self.admin_site.admin_view(self.csv_view),
                     name="modelling_targetinglist_csv"), *super().get_urls()]

    def csv_view(self, request, pk):
        if not request.user.has_perm("modelling.export_targetinglist"):
            raise PermissionDenied  # a list of customer ids: exporting it is its own permission
        target = get_object_or_404(TargetingList, pk=pk)
        audit_record("export", audit_target(target), request=request,
                     detail={"format": "csv", "via": "admin"})
        response = StreamingHttpResponse(targeting_list_csv(target), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="targeting-list-{pk}.csv"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        target = get_object_or_404(TargetingList.objects.select_related("campaign", "segment"),
                                   pk=object_id)
        context = {
            "summary": targeting_summary(target), "profit_chart": profit_curve_figure(target),
            "parameters": target.parameters or {}, **parameter_tables(target),
            "csv_url": reverse("admin:modelling_targetinglist_csv", args=[target.id])
            if request.user.has_perm("modelling.export_targetinglist") else None,
            "can_follow_up": self.has_follow_up_permission(request),
            "target": target,
        }
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), **context})


@admin.register(TargetingFollowUp)
class TargetingFollowUpAdmin(TaskActionsMixin, AuditedAdmin):
    """A list's policy in the field: start it, analyse it, download what to send."""

    list_display = ["id", "targeting_list", "experiment", "status", "shares", "summary",
                    "analysed_at", "plan_link"]
    list_select_related = ["experiment", "targeting_list__campaign"]
    readonly_fields = ["targeting_list", "experiment", "shares", "plan", "summary",
                       "analysis", "analysed_at", "created_at"]
    actions = ["start", "analyse"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Status")
    def status(self, obj):
        return obj.experiment.get_status_display()

    @admin.display(description="Result")
    def summary(self, obj):
        return follow_up_summary(obj.analysis)

    @admin.display(description="Plan")
    def plan_link(self, obj):
        url = reverse("admin:modelling_targetingfollowup_plan_csv", args=[obj.id])
        return format_html('<a href="{}">CSV</a>', url)

    @admin.action(description="Start: assign the population and draw the random offers",
                  permissions=["run_tasks"])
    def start(self, request, queryset):
        action_report(request, lambda f: targeting_follow_up_start(follow_up=f), queryset,
                      "Follow-ups started; download each plan for the CRM.", audit="start")

    @admin.action(description="Analyse incremental profit now", permissions=["run_tasks"])
    def analyse(self, request, queryset):
        action_report(request, lambda f: targeting_follow_up_analyse(follow_up=f), queryset,
                      "Follow-ups analysed.", audit="run")

    def get_urls(self):
        return [path("<int:pk>/plan.csv", self.admin_site.admin_view(self.plan_csv_view),
                     name="modelling_targetingfollowup_plan_csv"), *super().get_urls()]

    def plan_csv_view(self, request, pk):
        if not request.user.has_perm("modelling.export_targetinglist"):
            raise PermissionDenied  # who gets which offer is as sensitive as the list itself
        follow_up = get_object_or_404(TargetingFollowUp.objects.select_related("experiment"),
                                      pk=pk)
        audit_record("export", audit_target(follow_up), request=request,
                     detail={"format": "csv", "via": "admin"})
        response = StreamingHttpResponse(follow_up_plan_csv(follow_up), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="follow-up-{pk}.csv"'
        return response

from modelling import admin_segmentation  # noqa: E402, F401 - registers the segmentation pages
