"""Request body limits: the API's (API_MAX_BODY_BYTES, a JSON 413) and everyone else's.

Django refuses any body over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB by
default) with an HTML "Bad Request (400)" page, and DRF reads JSON through
``request.body``, which applies that check. A 10,000-row bulk request is
larger than that, so the settings raise Django's limit to the API's
(DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES), and this middleware,
reading only the Content-Length header, holds each path to its own limit
before any byte is read:

- ``/api/``: up to API_MAX_BODY_BYTES; larger is a 413 in the API's error
  format, naming the limit.
- everything else (the admin, its login page): up to FORM_MAX_BODY_BYTES,
  Django's default, as before; larger is a 413. Multipart uploads are left
  to Django, which counts only their non-file fields.

StrictJSONParser reads at most API_MAX_BODY_BYTES as well, for a body whose
length is not announced.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from core.api.errors import error_body

API_PREFIX = "/api/"


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads such a body as empty
        if request.path.startswith(API_PREFIX):
            limit = settings.API_MAX_BODY_BYTES
            if length > limit:
                return JsonResponse(error_body(
                    "too_large",
                    f"The request body is {length} bytes; the API accepts at most {limit} bytes "
                    f"(API_MAX_BODY_BYTES). Send the rows in several requests of at most "
                    f"{settings.API_BULK_MAX_ROWS} rows."), status=413)
        elif length > settings.FORM_MAX_BODY_BYTES and not request.content_type.startswith(
                "multipart/"):
            return HttpResponse(f"The request body is larger than {settings.FORM_MAX_BODY_BYTES} "
                                "bytes.", status=413, content_type="text/plain")
        return self.get_response(request)
