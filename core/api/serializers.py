"""Shapes every app's API shares: bulk row lists and background task runs.

Bulk inputs document each row with a serializer but leave row checks to the
service (BulkRowsField): the service checks all rows in one pass, reports
every bad one with its index, and is the only place the rules live.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from core.models import TaskRun


class BulkRowsField(serializers.ListField):
    """A list of 1..API_BULK_MAX_ROWS rows, passed on unvalidated (see module doc)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("max_length", settings.API_BULK_MAX_ROWS)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return data


class TaskRunSerializer(serializers.ModelSerializer):
    error = serializers.SerializerMethodField(help_text="The failure's one-line summary.")

    class Meta:
        model = TaskRun
        fields = ["id", "name", "status", "progress", "step", "params", "result", "error",
                  "created_at", "started_at", "finished_at"]

    def get_error(self, run: TaskRun) -> str:
        # The stored traceback is for operators (admin), not for API clients.
        return run.error.split("\n", 1)[0]


class TaskRunFilterSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(choices=TaskRun.Status.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)

    def filter(self, queryset):
        data = self.validated_data
        for name in ("name", "status"):
            if name in data:
                queryset = queryset.filter(**{name: data[name]})
        if "created_after" in data:
            queryset = queryset.filter(created_at__gte=data["created_after"])
        if "created_before" in data:
            queryset = queryset.filter(created_at__lt=data["created_before"])
        return queryset
