"""core.log_privacy: customer ids in API paths and queries become pseudonyms in log lines."""

import logging

from core.log_privacy import CustomerIdLogFilter, customer_ids_redact
from core.pseudonyms import customer_pseudonym


def test_paths_and_queries_get_the_pseudonym_and_routes_stay():
    p = customer_pseudonym("a@b.test")
    assert customer_ids_redact('"GET /api/v1/customers/a%40b.test/scores/ HTTP/1.1" 200') == (
        f'"GET /api/v1/customers/~{p}/scores/ HTTP/1.1" 200')
    assert customer_ids_redact("POST /api/v1/experiments/spring/assignments/a@b.test/") == (
        f"POST /api/v1/experiments/spring/assignments/~{p}/")
    assert customer_ids_redact("GET /api/v1/events/?kind=visit&customer=a%40b.test") == (
        f"GET /api/v1/events/?kind=visit&customer=~{p}")
    for kept in ("POST /api/v1/customers/bulk/", "POST /api/v1/experiments/x/assignments/bulk/",
                 "GET /admin/marketing/customer/12/change/"):
        assert customer_ids_redact(kept) == kept


def test_the_filter_rewrites_a_gunicorn_style_record():
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(r)s"',
                               ({"h": "10.0.0.1", "r": "GET /api/v1/customers/a@b.test/"},), None)
    assert CustomerIdLogFilter().filter(record) is True
    assert record.getMessage() == (
        f'10.0.0.1 "GET /api/v1/customers/~{customer_pseudonym("a@b.test")}/"')


def test_every_handler_of_the_request_loggers_carries_the_filter():
    for name in ("", "django.server", "django.request", "gunicorn.access"):
        logger = logging.getLogger(name)
        while logger is not None:
            for handler in logger.handlers:
                if type(handler).__module__.startswith("_pytest"):
                    continue  # pytest's capture, not a platform handler
                assert any(isinstance(f, CustomerIdLogFilter) for f in handler.filters), (
                    name, handler)
            logger = logger.parent if logger.propagate else None
