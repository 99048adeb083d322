"""Cursor pagination in primary-key order: stable under inserts, no OFFSET scans."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1_000


class NewestFirstCursorPagination(IdCursorPagination):
    ordering = "-id"
