"""Answers for errors that are the platform's state, not the request's."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.html import escape

from core.task_runs import BrokerUnavailable


class BrokerUnavailableMiddleware:
    """A page that queued work while the broker was down answers 503 with why.

    The run is committed and stays queued (the reaper sends it when the
    broker returns), so the page says so instead of a bare server error.
    The API answers the same case in its own error shape (core.api.errors).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, BrokerUnavailable):
            return None
        back = escape(request.META.get("HTTP_REFERER") or request.path)
        body = (f"<!doctype html><title>Task queue unavailable</title>"
                f"<h1>Task queue unavailable (503)</h1><p>{escape(str(exception))}</p>"
                f"<p><a href=\"{back}\">Back</a></p>")
        return HttpResponse(body, status=503, headers={"Retry-After": "60"})
