"""Model versions and the targeting lists built from them."""

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_actions import action_report
from core.charts import svg_line_chart
from jobs.requests import customers_score_request
from modelling.admin_panels import uplift_text
from modelling.models import ModelVersion, TargetingList
from modelling.targeting import targeting_list_create, targeting_list_csv


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "kind", "estimator", "status", "selection_score",
                    "is_champion", "rows_train", "training_seconds", "created_at"]
    list_filter = ["kind", "status", "is_champion", "campaign"]
    exclude = ["metrics", "curves", "feature_reference", "explanations"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields
                       if f.name not in {"metrics", "curves", "feature_reference",
                                         "explanations"}]
    actions = ["score", "target"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Score all customers with this model (background task)")
    def score(self, request, queryset):
        action_report(request, lambda v: customers_score_request(model_version=v), queryset,
                "Scoring queued; see Task runs.")

    @admin.action(description="Create a targeting list (campaign costs and budget)")
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
        url = reverse("admin:modelling_targetinglist_csv", args=[obj.id])
        return format_html('<a href="{}">CSV</a>', url)

    def get_urls(self):
        return [path("<int:pk>/csv/", self.admin_site.admin_view(self.csv_view),
                     name="modelling_targetinglist_csv"), *super().get_urls()]

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
                                    "csv_url": reverse("admin:modelling_targetinglist_csv",
                                                       args=[target.id])})
