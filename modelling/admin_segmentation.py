"""The segmentation run's admin page: the map, the profiles and *Save as segment*.

Registered from modelling.admin. The page is read-only (runs are written by
modelling.segmentation); saving a cluster is a POST to its own URL, which
calls the same service as the API (segment_cluster_save) and needs the
permission to add segments.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.admin_actions import TaskActionsMixin
from core.admin_readonly import SnapshotAdmin
from core.audit import audit_record
from core.plots import cluster_map
from core.small_cells import privacy_min_cell
from experiments.models import Experiment
from jobs.requests import segmentation_run_request
from marketing.models import Campaign, Segment
from modelling.models import SegmentationRun, SegmentCluster
from modelling.segmentation import segment_cluster_save


class SegmentationStartForm(forms.Form):
    campaign = forms.ModelChoiceField(Campaign.objects.all())
    experiment = forms.ModelChoiceField(
        Experiment.objects.all(), required=False,
        help_text="For per-arm effects in the cluster profiles (an experiment of the campaign).")
    k_min = forms.IntegerField(min_value=2, max_value=20, initial=3,
                               help_text="Fewest clusters to consider.")
    k_max = forms.IntegerField(min_value=2, max_value=20, initial=8,
                               help_text="Most clusters to consider; k is the best silhouette.")


class ClusterSaveForm(forms.Form):
    key = forms.SlugField(max_length=64, help_text="The new segment's key.")
    name = forms.CharField(max_length=128, help_text="A name a manager will recognise.")


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def profile_display(profile: dict) -> dict:
    """The profile with its proportions written as percentages for the page."""
    shown = dict(profile)
    for key in ("share", "conversion_90d", "churn_risk"):
        shown[f"{key}_text"] = _percent(profile.get(key))
    shown["arms"] = [{**arm, "rate_text": _percent(arm.get("rate")),
                      "predicted": (profile.get("predicted_uplift") or {}).get(arm["arm"])}
                     for arm in profile.get("arms", [])]
    return shown


@admin.register(SegmentationRun)
class SegmentationRunAdmin(TaskActionsMixin, SnapshotAdmin):
    list_display = ["id", "campaign", "experiment", "status", "embedding", "k", "customers",
                    "cutoff", "created_at"]
    list_filter = ["status", "campaign"]
    exclude = ["map_points", "comparison", "k_scores"]
    readonly_fields = [f.name for f in SegmentationRun._meta.fields
                       if f.name not in {"map_points", "comparison", "k_scores"}]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:pk>/clusters/<int:index>/save/", view(self.save_cluster_view),
                     name="modelling_segmentationrun_save_cluster"),
                path("start/", view(self.start_view), name="modelling_segmentationrun_start"),
                *super().get_urls()]

    def start_view(self, request):
        """GET: the form (campaign, experiment, the range of k); POST queues the run."""
        if not self.has_run_tasks_permission(request):
            raise PermissionDenied
        form = SegmentationStartForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = segmentation_run_request(**form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                segmentation = SegmentationRun.objects.get(task_run=run)
                messages.success(request, "Segmentation queued; this page shows it when done.")
                return redirect(reverse("admin:modelling_segmentationrun_change",
                                        args=[segmentation.id]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": "Learn behavioural segments", "form": form}
        return TemplateResponse(request, "admin/modelling/segmentationrun/start.html", context)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {
            **(extra_context or {}), "can_start": self.has_run_tasks_permission(request)})

    def _can_save(self, request) -> bool:
        return request.user.has_perm("marketing.add_segment")

    def save_cluster_view(self, request, pk, index):
        """POST: turn the cluster into a Segment; back to the run's page either way."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._can_save(request):
            raise PermissionDenied
        cluster = get_object_or_404(SegmentCluster.objects.select_related("run", "segment"),
                                    run_id=pk, index=index)
        back = reverse("admin:modelling_segmentationrun_change", args=[pk])
        form = ClusterSaveForm(request.POST)
        if not form.is_valid():
            messages.error(request, "; ".join(f"{field}: {m}" for field, ms in
                                              form.errors.items() for m in ms))
            return redirect(back)
        if Segment.objects.filter(key=form.cleaned_data["key"]).exists():
            messages.error(request, f"key: a segment {form.cleaned_data['key']!r} exists")
            return redirect(back)
        try:
            with transaction.atomic():
                segment = segment_cluster_save(cluster=cluster, **form.cleaned_data)
                audit_record("create", f"segment {segment.id}", request=request,
                             detail={"from": f"cluster {index} of segmentation run {pk}"})
        except (ValueError, ValidationError) as exc:
            messages.error(request, str(exc))
            return redirect(back)
        messages.success(request, f"Saved cluster {index} as the segment {segment.name}.")
        return redirect(back)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = get_object_or_404(SegmentationRun, pk=object_id)
        clusters = list(run.clusters.select_related("segment"))
        names = {c.index: c.segment.name if c.segment else f"cluster {c.index}"
                 for c in clusters}
        points = run.map_points or {}
        context = {
            "run": run, "clusters": [(c, profile_display(c.profile)) for c in clusters], "can_save": self._can_save(request),
            "privacy_min_cell": privacy_min_cell(),
            "comparison": run.comparison, "k_scores": sorted(
                ((int(k), v) for k, v in (run.k_scores or {}).items())),
            "map_chart": cluster_map(x=points["x"], y=points["y"], cluster=points["cluster"],
                                     names=names) if points.get("x") else None,
        }
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), **context})
