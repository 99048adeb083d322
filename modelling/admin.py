"""Model versions and the targeting lists built from them."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_actions import TaskActionsMixin, action_report
from core.admin_readonly import SnapshotAdmin
from core.charts import svg_line_chart
from jobs.requests import customers_score_request
from modelling.admin_panels import uplift_text
from modelling.followup import (
    follow_up_plan_csv,
    follow_up_summary,
    targeting_follow_up_analyse,
    targeting_follow_up_create,
    targeting_follow_up_start,
)
from modelling.models import ModelVersion, TargetingFollowUp, TargetingList
from modelling.targeting import targeting_list_create, targeting_list_csv


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
                "Scoring queued; see Task runs.")

    @admin.action(description="Create a targeting list (campaign costs and budget)",
                  permissions=["run_tasks"])
    def target(self, request, queryset):
        action_report(request, lambda v: targeting_list_create(campaign=v.campaign, model_version=v),
                queryset, "Targeting list created; see Targeting lists.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = get_object_or_404(ModelVersion, pk=object_id)
        charts = {}
        for arm, curve in version.curves.items():
            charts[arm] = svg_line_chart({arm: (curve["x"], curve["qini"])},
                                         x_label="customers targeted (ranked by uplift)",
                                         y_label="Qini", diagonal=True)
        context = {"metrics": version.metrics, "qini_charts": charts,
                   "explanations": _explanations_display(version.explanations)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}),
                                                                  **context})


def _explanations_display(explanations: dict) -> dict:
    """The stored drivers (top 8 per arm, with readable names) and rules for the template."""
    if not explanations or "error" in explanations:
        return explanations or {}
    labels = explanations.get("labels", {})
    unit = explanations.get("unit", "conversions")
    drivers = {arm: [(labels.get(name, name), uplift_text(size, unit).lstrip("+"))
                     for name, size in ranking[:8]]
               for arm, ranking in explanations["drivers"]["ranking"].items()}
    shares = {kind: (f"{v['share']:.0%}" if v["share"] is not None else v["note"])
              for kind, v in explanations["rules"]["value_share"].items()}
    return {**explanations, "drivers_display": drivers, "shares_display": shares,
            "method_text": explanations["method"].replace("_", " ")}


@admin.register(TargetingList)
class TargetingListAdmin(SnapshotAdmin):
    list_display = ["id", "campaign", "model_version", "size", "total_cost", "expected_profit",
                    "created_at", "csv_link"]
    list_filter = ["campaign"]
    readonly_fields = [f.name for f in TargetingList._meta.fields if f.name != "profit_curve"]
    exclude = ["profit_curve"]
    actions = ["follow_up"]

    def has_follow_up_permission(self, request) -> bool:
        """A follow-up is a new experiment: the same permission as adding one."""
        return request.user.has_perm("experiments.add_experiment")

    @admin.action(description="Create a follow-up experiment (policy / random / holdout "
                              "45/45/10, left in draft)", permissions=["follow_up"])
    def follow_up(self, request, queryset):
        action_report(request, lambda t: targeting_follow_up_create(targeting_list=t), queryset,
                      "Follow-up experiment created in draft; see Targeting follow-ups.")

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
                                    "csv_url": reverse("admin:modelling_targetinglist_csv",
                                                       args=[target.id])})


@admin.register(TargetingFollowUp)
class TargetingFollowUpAdmin(TaskActionsMixin, admin.ModelAdmin):
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
                      "Follow-ups started; download each plan for the CRM.")

    @admin.action(description="Analyse incremental profit now", permissions=["run_tasks"])
    def analyse(self, request, queryset):
        action_report(request, lambda f: targeting_follow_up_analyse(follow_up=f), queryset,
                      "Follow-ups analysed.")

    def get_urls(self):
        return [path("<int:pk>/plan.csv", self.admin_site.admin_view(self.plan_csv_view),
                     name="modelling_targetingfollowup_plan_csv"), *super().get_urls()]

    def plan_csv_view(self, request, pk):
        if not request.user.has_perm("modelling.export_targetinglist"):
            raise PermissionDenied  # who gets which offer is as sensitive as the list itself
        follow_up = get_object_or_404(TargetingFollowUp.objects.select_related("experiment"),
                                      pk=pk)
        response = StreamingHttpResponse(follow_up_plan_csv(follow_up), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="follow-up-{pk}.csv"'
        return response
