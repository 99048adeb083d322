"""Cursor pagination in primary-key order: stable under inserts, no OFFSET scans."""

from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

INT64_MAX = 2**63 - 1

BAD_CURSOR = ("is not a cursor this API gave out; follow the next or previous link of a "
              "response, or leave the cursor out to start from the beginning")


class IdCursorPagination(CursorPagination):
    """Pages ordered by an integer column (``id`` here; subclasses name another).

    A cursor is base64 of a query string the client may edit. DRF answers
    one that does not decode with a 404 and passes the position through
    unchecked, so ``p=abc`` reached the database as an integer and failed
    there (a 500). Every cursor that does not decode to what we give out,
    an integer position in the 64-bit range, is a 400 on ``cursor`` here.
    """

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1_000

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [BAD_CURSOR]}) from None
        if cursor is not None and cursor.position is not None and not _int64(cursor.position):
            raise ValidationError({self.cursor_query_param: [BAD_CURSOR]})
        return cursor


def _int64(text: str) -> bool:
    try:
        return -INT64_MAX <= int(text) <= INT64_MAX
    except ValueError:
        return False


class NewestFirstCursorPagination(IdCursorPagination):
    ordering = "-id"
