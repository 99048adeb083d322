"""The campaign manager's home: experiments and their analyses.

Buttons (admin actions) call the same requests as the API (jobs.requests);
heavy work is queued as tasks whose progress shows under Task runs.
"""

from django.contrib import admin
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html

from core.admin_actions import action_report
from core.charts import svg_line_chart
from experiments.models import AnalysisResult, Arm, Experiment, Metric
from jobs.requests import experiment_analyse_request, uplift_model_train_request


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0
    fields = ["name", "weight", "is_control", "contacts_customer", "cost_per_contact",
              "cost_per_conversion"]


class MetricInline(admin.TabularInline):
    model = Metric
    extra = 0


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
        action_report(request, lambda e: experiment_analyse_request(experiment=e), queryset,
                "Analysis queued; see Task runs for progress.")

    @admin.action(description="Train the default uplift model (background task)")
    def train(self, request, queryset):
        action_report(request, lambda e: uplift_model_train_request(experiment=e), queryset,
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
