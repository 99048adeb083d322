"""Endpoints every app shares under /api/v1/ (see config/urls.py): background tasks."""

from django.urls import path

from core.api import (
    converters,  # noqa: F401 - registers crm_id and id64
    views,
)

urlpatterns = [
    path("tasks/", views.TaskRunListView.as_view(), name="task-list"),
    path("tasks/<id64:id>/", views.TaskRunDetailView.as_view(), name="task-detail"),
]
