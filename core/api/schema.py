"""OpenAPI pieces every view shares: the error envelope and its examples."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class ErrorRowSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the rejected item in the request.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="Field of the item -> messages.")


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text=(
        "Machine-readable: invalid, rows_rejected, parse_error, not_authenticated, "
        "authentication_failed, permission_denied, not_found, method_not_allowed, "
        "unsupported_media_type, too_large, conflict, throttled, queue_unavailable, "
        "temporarily_unavailable."))
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="JSON path in the request -> messages.")
    rows = ErrorRowSerializer(many=True, help_text="Rejected items of a bulk request.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


def _example(name: str, code: str, message: str, *, fields=None, rows=None) -> OpenApiExample:
    return OpenApiExample(name, value={"error": {"code": code, "message": message,
                                                 "fields": fields or {}, "rows": rows or []}},
                          response_only=True)


_ERRORS = {
    400: ("Invalid input; nothing was written.", _example(
        "Invalid input", "invalid", "Invalid input: see fields.",
        fields={"arms[0].weight": ["Ensure this value is greater than or equal to 0."]})),
    401: ("No or an invalid API key.", _example(
        "Not authenticated", "not_authenticated", "Authentication credentials were not provided.")),
    403: ("The key's scope or the user's role does not allow this.", _example(
        "Read-only key", "permission_denied",
        "This API key has read scope; the request needs write scope.")),
    404: ("No such object.", _example("Not found", "not_found", "No experiment with key 'x'.")),
    409: ("A concurrent request wrote the same data; retry.", _example(
        "Conflict", "conflict",
        "The request conflicts with data written at the same time; send it again.")),
    413: ("The body is larger than API_MAX_BODY_BYTES.", _example(
        "Too large", "too_large", "The request body is larger than 33554432 bytes.")),
    429: ("Too many requests for this key; see Retry-After.", _example(
        "Throttled", "throttled", "Request was throttled. Expected available in 12 seconds.")),
    503: ("The task queue or the database is briefly unreachable; see Retry-After. A queued "
          "task is recorded and starts when the queue is back; any other request kept "
          "nothing and is safe to send again.", _example(
              "Task queue unavailable", "queue_unavailable",
              "The task queue is unreachable, so task run 42 has not been started yet. It is "
              "recorded and will be sent as soon as the queue is back (OperationalError).",
              fields={"task_run": ["42"]})),
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for an operation: the given ones plus 401, 403, 429 and 503."""
    wanted = sorted({*statuses, 401, 403, 429, 503})
    return {s: OpenApiResponse(ErrorSerializer, description=_ERRORS[s][0],
                               examples=[_ERRORS[s][1]]) for s in wanted}


ROWS_REJECTED_EXAMPLE = _example(
    "Rejected rows", "rows_rejected",
    "2 of 500 items were rejected; nothing was written. Fix the listed items and send the "
    "request again.",
    rows=[{"index": 3, "errors": {"customer": ["no customer with external_id 'crm-9'"]}},
          {"index": 41, "errors": {"occurred_at": [
              "must be a timezone-aware datetime (ISO 8601 with offset)"]}}])


def bulk_error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Like error_responses, with the per-row 400 of bulk requests and 413."""
    responses = error_responses(*statuses, 413)
    responses[400] = OpenApiResponse(
        ErrorSerializer, description="Some items are invalid: each is listed in `rows` with "
        "its index, and nothing was written.",
        examples=[ROWS_REJECTED_EXAMPLE, _ERRORS[400][1]])
    return responses
