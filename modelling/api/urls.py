"""Model endpoints under /api/v1/ (see config/urls.py): training, model versions,
scores, explanations and targeting lists."""

from django.urls import path

from core.api import converters  # noqa: F401 - registers crm_id and id64
from modelling.api import views

urlpatterns = [
    path("experiments/<slug:key>/train/", views.ExperimentTrainView.as_view(),
         name="experiment-train"),
    path("campaigns/<slug:key>/train-response/", views.CampaignTrainResponseView.as_view(),
         name="campaign-train-response"),
    path("campaigns/<slug:key>/target-lists/", views.CampaignTargetingListView.as_view(),
         name="campaign-target-lists"),
    path("model-versions/", views.ModelVersionListView.as_view(), name="model-version-list"),
    path("model-versions/<id64:id>/", views.ModelVersionDetailView.as_view(),
         name="model-version-detail"),
    path("model-versions/<id64:id>/score/", views.ModelVersionScoreView.as_view(),
         name="model-version-score"),
    path("model-versions/<id64:id>/scores/", views.CustomerScoreListView.as_view(),
         name="model-version-scores"),
    path("customers/<crm_id:external_id>/scores/", views.CustomerScoresView.as_view(),
         name="customer-scores"),
    path("customers/<crm_id:external_id>/explanation/",
         views.CustomerExplanationView.as_view(), name="customer-explanation"),
    path("target-lists/<id64:id>/", views.TargetingListDetailView.as_view(),
         name="target-list-detail"),
    path("target-lists/<id64:id>/entries/", views.TargetingEntryListView.as_view(),
         name="target-list-entries"),
    path("target-lists/<id64:id>/csv/", views.TargetingListCsvView.as_view(),
         name="target-list-csv"),
    path("target-lists/<id64:id>/follow-ups/", views.TargetingListFollowUpView.as_view(),
         name="target-list-follow-ups"),
    path("follow-ups/<id64:id>/", views.FollowUpDetailView.as_view(), name="follow-up-detail"),
    path("follow-ups/<id64:id>/start/", views.FollowUpStartView.as_view(),
         name="follow-up-start"),
    path("follow-ups/<id64:id>/analyse/", views.FollowUpAnalyseView.as_view(),
         name="follow-up-analyse"),
    path("follow-ups/<id64:id>/plan/", views.FollowUpPlanView.as_view(), name="follow-up-plan"),
    path("follow-ups/<id64:id>/plan/csv/", views.FollowUpPlanCsvView.as_view(),
         name="follow-up-plan-csv"),
]
