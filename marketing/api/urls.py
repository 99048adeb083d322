"""Marketing endpoints under /api/v1/ (see config/urls.py)."""

from django.urls import path

from core.api import converters  # noqa: F401 - registers crm_id and id64
from marketing.api import views

urlpatterns = [
    path("customer-attributes/", views.CustomerAttributeListView.as_view(),
         name="customer-attribute-list"),
    path("customers/", views.CustomerListView.as_view(), name="customer-list"),
    path("customers/bulk/", views.CustomerBulkView.as_view(), name="customer-bulk"),
    path("customers/<crm_id:external_id>/", views.CustomerDetailView.as_view(),
         name="customer-detail"),
    path("customers/<crm_id:external_id>/erase/", views.CustomerEraseView.as_view(),
         name="customer-erase"),
    path("customers/<crm_id:external_id>/export/", views.CustomerExportView.as_view(),
         name="customer-export"),
    path("events/", views.EventListView.as_view(), name="event-list"),
    path("events/bulk/", views.EventBulkView.as_view(), name="event-bulk"),
    path("segments/", views.SegmentListView.as_view(), name="segment-list"),
    path("segments/<slug:key>/", views.SegmentDetailView.as_view(), name="segment-detail"),
    path("segments/<slug:key>/count/", views.SegmentCountView.as_view(), name="segment-count"),
    path("campaigns/", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<slug:key>/", views.CampaignDetailView.as_view(), name="campaign-detail"),
]
