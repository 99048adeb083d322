"""Path converters that only match values the database can look up.

A CRM id may hold any character but "/" and NUL (PostgreSQL text cannot
hold NUL); an object id fits a 64-bit integer. Anything else is a 404.
"""

from __future__ import annotations

from django.urls import register_converter


class CrmIdConverter:
    regex = "[^/\x00]{1,128}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class Id64Converter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(CrmIdConverter, "crm_id")
register_converter(Id64Converter, "id64")
