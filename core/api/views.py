"""The API kit's views: list paging with filters, who asked, and background tasks."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api import serializers as s
from core.api.pagination import IdCursorPagination, NewestFirstCursorPagination
from core.api.schema import error_responses
from core.audit import audit_task_run
from core.models import ApiKey, TaskRun


def requester(request) -> str:
    """Who made the request, for audit records: the key's name or the username."""
    if isinstance(request.auth, ApiKey):
        return f"api-key:{request.auth.name}"
    return f"user:{request.user.get_username()}" if request.user.is_authenticated else ""


def filtered(filter_class, request, queryset):
    params = filter_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.filter(queryset)


class ListView(GenericAPIView):
    """A cursor-paginated list of ``queryset`` filtered by ``filter_class``."""

    pagination_class = IdCursorPagination
    filter_class = None

    def list(self, request, queryset):
        if self.filter_class is not None:
            queryset = filtered(self.filter_class, request, queryset)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


TASK_QUEUED_EXAMPLE = {"id": 42, "name": "segment_size", "status": "queued", "progress": 0.0,
                       "step": "", "params": {"segment_id": 3}, "result": {}, "error": "",
                       "created_at": "2026-06-02T08:00:00Z", "started_at": None,
                       "finished_at": None}


# --- Tasks -------------------------------------------------------------------

TASK_EXAMPLE = {"id": 42, "name": "segment_size", "status": "succeeded", "progress": 1.0,
                "step": "done", "params": {"segment_id": 3},
                "result": {"segment_id": 3, "members": 1840}, "error": "",
                "created_at": "2026-06-02T08:00:00Z", "started_at": "2026-06-02T08:00:01Z",
                "finished_at": "2026-06-02T08:00:02Z"}


class TaskRunListView(ListView):
    permission_model = TaskRun
    pagination_class = NewestFirstCursorPagination
    serializer_class = s.TaskRunSerializer
    filter_class = s.TaskRunFilterSerializer

    @extend_schema(
        tags=["tasks"], summary="List background tasks, newest first",
        parameters=[s.TaskRunFilterSerializer],
        responses={200: s.TaskRunSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Task", value=TASK_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return self.list(request, TaskRun.objects.all())


class TaskRunDetailView(GenericAPIView):
    permission_model = TaskRun
    serializer_class = s.TaskRunSerializer

    @extend_schema(
        tags=["tasks"], summary="A background task's status, progress and result",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH,
                                     examples=[OpenApiExample("Task", value=42)])],
        responses={200: s.TaskRunSerializer, **error_responses(404)},
        examples=[OpenApiExample("Task", value=TASK_EXAMPLE, response_only=True)],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        return Response(self.get_serializer(get_object_or_404(TaskRun, pk=id)).data)


def queued(run: TaskRun, request) -> Response:
    """202 with the run; the audit log records who queued it (the caller wraps both in
    one transaction: the view is ``transaction.atomic``)."""
    audit_task_run(run, request=request)
    return Response(s.TaskRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def queued_example(name: str, params: dict) -> OpenApiExample:
    return OpenApiExample("Queued", response_only=True, status_codes=[202],
                          value={**TASK_QUEUED_EXAMPLE, "name": name, "params": params})

