"""Experiment endpoints under /api/v1/ (see config/urls.py): experiments,
assignment, exposures, conversions, outcomes and analysis results."""

from django.urls import path

from core.api import converters  # noqa: F401 - registers crm_id and id64
from experiments.api import views

urlpatterns = [
    path("experiments/", views.ExperimentListView.as_view(), name="experiment-list"),
    path("experiments/<slug:key>/", views.ExperimentDetailView.as_view(),
         name="experiment-detail"),
    path("experiments/<slug:key>/start/", views.ExperimentStartView.as_view(),
         name="experiment-start"),
    path("experiments/<slug:key>/stop/", views.ExperimentStopView.as_view(),
         name="experiment-stop"),
    path("experiments/<slug:key>/assignments/", views.AssignmentListView.as_view(),
         name="assignment-list"),
    path("experiments/<slug:key>/assignments/bulk/", views.AssignmentBulkView.as_view(),
         name="assignment-bulk"),
    path("experiments/<slug:key>/assignments/<crm_id:external_id>/",
         views.AssignmentDetailView.as_view(), name="assignment-detail"),
    path("experiments/<slug:key>/exposures/", views.ExposureListView.as_view(),
         name="exposure-list"),
    path("experiments/<slug:key>/conversions/", views.ConversionBulkView.as_view(),
         name="conversion-bulk"),
    path("experiments/<slug:key>/outcomes/", views.OutcomesView.as_view(),
         name="experiment-outcomes"),
    path("experiments/<slug:key>/analyse/", views.ExperimentAnalyseView.as_view(),
         name="experiment-analyse"),
    path("experiments/<slug:key>/results/", views.AnalysisResultListView.as_view(),
         name="analysis-result-list"),
    path("experiments/<slug:key>/results/latest/", views.AnalysisResultLatestView.as_view(),
         name="analysis-result-latest"),
    path("experiments/<slug:key>/results/<id64:id>/", views.AnalysisResultDetailView.as_view(),
         name="analysis-result-detail"),
]
