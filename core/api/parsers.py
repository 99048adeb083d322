"""A JSON parser that refuses what the databases cannot store.

JSON allows strings with NUL characters and lone UTF-16 surrogates, and
numbers too large for a float or a 64-bit integer. PostgreSQL rejects the
first two in text and jsonb, and the last two overflow FloatField and
BigIntegerField, which would surface as server errors. Rejecting them here
makes every such request a 400 before any view runs.
"""

from __future__ import annotations

import json
import math

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

INT64_MAX = 2**63 - 1


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _parse_int(text: str) -> int:
    value = int(text)
    if not -INT64_MAX <= value <= INT64_MAX:
        raise ValueError(f"integer {text[:40]}... is out of the 64-bit range")
    return value


def _parse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


MAX_DEPTH = 32
_CONTAINERS = frozenset({dict, list})


def _problem(data: object, *, check_strings: bool) -> str | None:
    """Why the parsed body cannot be stored, or None.

    Walks containers iteratively (no recursion limit to hit) and fails on
    nesting deeper than MAX_DEPTH, which recursive consumers (segment rules,
    the JSON encoder) would turn into a RecursionError, and, when asked, on
    strings with NUL or an unpaired surrogate. A container holding no
    container is passed over at C speed (the rows of a bulk request).
    """
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"JSON nested deeper than {MAX_DEPTH} levels is not accepted."
        children = value.values() if type(value) is dict else value
        if check_strings:
            if type(value) is dict and not all(map(_string_ok, value)):
                return _BAD_STRING
            if not all(_string_ok(c) for c in children if type(c) is str):
                return _BAD_STRING
        if _CONTAINERS.isdisjoint(map(type, children)):
            continue
        stack.extend((c, depth + 1) for c in children if type(c) in _CONTAINERS)
    return None


_BAD_STRING = "Strings may not contain NUL characters or unpaired surrogates."


def _string_ok(value: str) -> bool:
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            data = json.loads(body, parse_float=_parse_float, parse_int=_parse_int,
                              parse_constant=_parse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        # NUL and surrogates can only arrive as \u escapes (raw control
        # characters are invalid JSON, and the body decoded as UTF-8), and
        # deep nesting needs many brackets: most bodies need no walk at all.
        check_strings = b"\\u" in body
        if isinstance(data, (dict, list)) and (
            check_strings or body.count(b"[") + body.count(b"{") > MAX_DEPTH
        ):
            problem = _problem(data, check_strings=check_strings)
            if problem:
                raise ParseError(problem)
        return data
