"""A cursor that does not decode to one the API gave out is a 400 on every paged list."""

import base64

import pytest
from django.urls import get_resolver
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.api.pagination import IdCursorPagination
from marketing.models import Customer
from tests.factories import customer_make

pytestmark = pytest.mark.django_db


def cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BAD_CURSORS = [
    cursor("p=abc"),  # cD1hYmM=: the position reaches an integer column
    cursor("p=1.5"),
    cursor("p=99999999999999999999999"),  # beyond bigint
    cursor("o=-3"),
    cursor("r=x"),
    "not base64!",
    "a",  # bad padding
    "\u00e9",
]


@pytest.mark.parametrize("path", ["/api/v1/customers/", "/api/v1/events/", "/api/v1/tasks/",
                                  "/api/v1/model-versions/", "/api/v1/experiments/"])
@pytest.mark.parametrize("bad", BAD_CURSORS)
def test_a_crafted_cursor_is_a_400_naming_the_cursor(api, path, bad):
    response = api.get(path, {"cursor": bad})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == ["cursor"]
    assert "cursor" in error["fields"]["cursor"][0]


def test_the_cursors_the_api_gives_out_still_work(api):
    for _ in range(3):
        customer_make()
    first = api.get("/api/v1/customers/", {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    assert len(first["results"]) + len(second["results"]) == Customer.objects.count()


def _pagination_classes() -> set[type]:
    found = set()

    def walk(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns)
            else:
                view = getattr(pattern.callback, "view_class", None)
                paginator = getattr(view, "pagination_class", None)
                if paginator is not None:
                    found.add(paginator)
    walk(get_resolver().url_patterns)
    return found


def test_every_paged_list_checks_its_cursor():
    classes = _pagination_classes()
    assert len(classes) >= 4  # id, newest first, rank, customer id
    factory = APIRequestFactory()
    for paginator_class in classes:
        assert issubclass(paginator_class, IdCursorPagination), paginator_class
        request = Request(factory.get("/", {"cursor": cursor("p=abc")}))
        with pytest.raises(Exception) as raised:
            paginator_class().decode_cursor(request)
        assert getattr(raised.value, "status_code", None) == 400
