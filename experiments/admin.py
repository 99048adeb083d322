"""The campaign manager's home: experiments, analyses, models, target lists.

Buttons (admin actions) call the same services as the API; heavy work is
queued as tasks whose progress shows under Task runs.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from experiments.charts import svg_line_chart
from experiments.models import (
    AnalysisResult,
    Arm,
    CampaignSchedule,
    Experiment,
    Metric,
    ModelVersion,
    TargetingList,
    TaskRun,
)
from experiments.schedules import campaign_schedule_delete, campaign_schedule_save
from experiments.services import (
    customers_score_request,
    experiment_analyse_request,
    uplift_model_train_request,
)
from experiments.targeting import targeting_list_create, targeting_list_csv


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0


class MetricInline(admin.TabularInline):
    model = Metric
    extra = 0


def _report(request, fn, items, done: str) -> None:
    for item in items:
        try:
            fn(item)
        except ValidationError as exc:
            messages.error(request, f"{item}: {'; '.join(exc.messages)}")
            return
    messages.info(request, done)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "campaign", "status", "layer", "started_at", "latest_decision"]
    list_filter = ["status", "layer"]
    readonly_fields = ["salt", "started_at", "ended_at", "created_at"]
    inlines = [ArmInline, MetricInline]
    actions = ["analyse", "train"]

    @admin.display(description="Latest decision")
    def latest_decision(self, obj):
        latest = obj.analyses.order_by("-created_at", "-id").first()
        if latest is None:
            return "-"
        url = reverse("admin:experiments_analysisresult_change", args=[latest.id])
        return format_html('<a href="{}">{}</a>', url, latest.decision.replace("_", " "))

    @admin.action(description="Analyse now (background task)")
    def analyse(self, request, queryset):
        _report(request, lambda e: experiment_analyse_request(experiment=e), queryset,
                "Analysis queued; see Task runs for progress.")

    @admin.action(description="Train the default uplift model (background task)")
    def train(self, request, queryset):
        _report(request, lambda e: uplift_model_train_request(experiment=e), queryset,
                "Training queued; see Task runs and Model versions.")


@admin.register(AnalysisResult)
class AnalysisResultAdmin(admin.ModelAdmin):
    list_display = ["experiment", "created_at", "customers", "decision", "srm_p_value"]
    list_filter = ["decision", "experiment"]
    readonly_fields = ["experiment", "created_at", "task_run", "customers", "decision",
                       "decision_reasons", "srm_p_value"]
    exclude = ["payload"]

    def has_add_permission(self, request):
        return False

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


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "kind", "estimator", "status", "selection_score",
                    "is_champion", "rows_train", "training_seconds", "created_at"]
    list_filter = ["kind", "status", "is_champion", "campaign"]
    exclude = ["metrics", "curves", "feature_reference"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields
                       if f.name not in {"metrics", "curves", "feature_reference"}]
    actions = ["score", "target"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Score all customers with this model (background task)")
    def score(self, request, queryset):
        _report(request, lambda v: customers_score_request(model_version=v), queryset,
                "Scoring queued; see Task runs.")

    @admin.action(description="Create a targeting list (campaign costs and budget)")
    def target(self, request, queryset):
        _report(request, lambda v: targeting_list_create(campaign=v.campaign, model_version=v),
                queryset, "Targeting list created; see Targeting lists.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = get_object_or_404(ModelVersion, pk=object_id)
        charts = {}
        for arm, curve in version.curves.items():
            charts[arm] = svg_line_chart({arm: (curve["x"], curve["qini"])},
                                         x_label="customers targeted (ranked by uplift)",
                                         y_label="Qini", diagonal=True)
        context = {"metrics": version.metrics, "qini_charts": charts}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}),
                                                                  **context})


@admin.register(TargetingList)
class TargetingListAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "model_version", "size", "total_cost", "expected_profit",
                    "created_at", "csv_link"]
    list_filter = ["campaign"]
    readonly_fields = [f.name for f in TargetingList._meta.fields if f.name != "profit_curve"]
    exclude = ["profit_curve"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Export")
    def csv_link(self, obj):
        url = reverse("admin:experiments_targetinglist_csv", args=[obj.id])
        return format_html('<a href="{}">CSV</a>', url)

    def get_urls(self):
        return [path("<int:pk>/csv/", self.admin_site.admin_view(self.csv_view),
                     name="experiments_targetinglist_csv"), *super().get_urls()]

    def csv_view(self, request, pk):
        target = get_object_or_404(TargetingList, pk=pk)
        response = StreamingHttpResponse(targeting_list_csv(target), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="targeting-list-{pk}.csv"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        target = get_object_or_404(TargetingList, pk=object_id)
        curve = target.profit_curve or {}
        chart = svg_line_chart({"expected profit": (curve.get("contacts", []),
                                                    curve.get("profit", []))},
                               x_label="customers contacted (best first)",
                               y_label="expected profit")
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), "profit_chart": chart,
                                    "csv_url": reverse("admin:experiments_targetinglist_csv",
                                                       args=[target.id])})


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "status", "progress", "step", "created_at", "finished_at"]
    list_filter = ["name", "status"]
    readonly_fields = [f.name for f in TaskRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(CampaignSchedule)
class CampaignScheduleAdmin(admin.ModelAdmin):
    """Edits here keep the Celery beat PeriodicTask in step (see experiments.schedules)."""

    list_display = ["campaign", "action", "every_hours", "enabled", "psi_threshold"]
    list_filter = ["action", "enabled"]
    readonly_fields = ["periodic_task"]

    def save_model(self, request, obj, form, change):
        campaign_schedule_save(obj)

    def delete_model(self, request, obj):
        campaign_schedule_delete(obj)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            campaign_schedule_delete(schedule)
