"""The one error format of the API, produced for every 4xx by one handler.

::

    {"error": {"code": "invalid",
               "message": "Invalid input.",
               "fields": {"arms[0].weight": ["Ensure this value is ..."]},
               "rows": [{"index": 3, "errors": {"occurred_at": ["..."]}}]}}

``fields`` maps a JSON path in the request to its messages; ``rows`` names
each rejected item of a bulk request by its position. Both are always
present (empty when they do not apply). Services raise Django's
ValidationError (mapped to 400 with the same paths) or return rejected rows,
which views raise as RowsRejected; a unique-constraint race surfaces as 409.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.task_delivery import transient_reason
from core.task_runs import BrokerUnavailable

NON_FIELD = "non_field_errors"


class RowsRejected(exceptions.APIException):
    """A bulk request in which some items are invalid; nothing was written."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "rows_rejected"

    def __init__(self, rows: list[dict], *, total: int):
        self.rows = [
            {"index": row["index"], "errors": {k: _messages(v) for k, v in row["errors"].items()}}
            for row in rows
        ]
        super().__init__(
            f"{len(rows)} of {total} items were rejected; nothing was written. "
            "Fix the listed items and send the request again."
        )


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with data written at the same time; send it again."
    default_code = "conflict"


def _messages(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def flatten_errors(detail: object, path: str = "", out: dict | None = None) -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"a.b[2].c": [messages]}``."""
    out = {} if out is None else out
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # DRF keys a list's item errors by position
                child = f"{path}[{key}]"
            else:
                key = str(key)
                child = key if not path else (path if key == NON_FIELD else f"{path}.{key}")
            flatten_errors(value, child, out)
    elif isinstance(detail, list) and any(isinstance(v, (dict, list)) for v in detail):
        for index, value in enumerate(detail):
            if value:
                flatten_errors(value, f"{path}[{index}]", out)
    else:
        out.setdefault(path or NON_FIELD, []).extend(_messages(detail))
    return out


def _django_validation_fields(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {(NON_FIELD if k == "__all__" else k): list(v) for k, v in exc.message_dict.items()}
    return {NON_FIELD: list(exc.messages)}


def error_body(code: str, message: str, *, fields: dict | None = None,
               rows: list | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}, "rows": rows or []}}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        fields = _django_validation_fields(exc)
        set_rollback()
        return Response(error_body("invalid", _summary(fields), fields=fields),
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, BrokerUnavailable):
        # The run is committed and queued; the reaper sends it when the broker returns.
        return Response(error_body("queue_unavailable", str(exc),
                                   fields={"task_run": [str(exc.run_id)]}),
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "60"})
    reason = transient_reason(exc)
    if reason:
        # The database connection dropped (or a serialization failure, a
        # deadlock): the request's transaction was rolled back, and a bulk
        # write with idempotency keys is safe to send again.
        set_rollback()
        return Response(error_body("temporarily_unavailable",
                                   f"The request was interrupted ({reason}); nothing of it "
                                   "was kept. Send it again."),
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
    if isinstance(exc, IntegrityError):
        exc = Conflict()
    elif isinstance(exc, DataError):
        exc = exceptions.ValidationError(
            {NON_FIELD: ["A value is out of range or malformed for the database."]})
    elif isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: Django's 500 handling and logging
    if isinstance(exc, RowsRejected):
        response.data = error_body(exc.default_code, str(exc.detail), rows=exc.rows)
    elif isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        response.data = error_body("invalid", _summary(fields), fields=fields)
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if not isinstance(code, str):
            code = getattr(exc, "default_code", "error")
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(code, str(detail))
    return response


def _summary(fields: dict[str, list[str]]) -> str:
    if list(fields) == [NON_FIELD] and len(fields[NON_FIELD]) == 1:
        return fields[NON_FIELD][0]
    return "Invalid input: see fields."
