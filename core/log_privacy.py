"""Keep customer ids out of log lines (access logs, Django's request warnings).

The API names a customer by the CRM's id in its URLs
(``/api/v1/customers/<id>/``, ``.../assignments/<id>/``) and query strings
(``?customer=<id>``), and a CRM may use e-mail addresses as ids. Every
handler of the platform's loggers carries ``CustomerIdLogFilter``
(config.settings LOGGING; gunicorn's access log through
config/gunicorn.conf.py), which writes the customer's pseudonym
(core.pseudonyms) in place of the id before the line is formatted, so an
operator can still follow one customer's requests across lines without
the log holding who it was.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from core.pseudonyms import customer_pseudonym

# Words that are routes, not ids, in the positions below.
_ROUTES = frozenset({"bulk"})
_PATH_ID = re.compile(
    r"(/api/v1/(?:customers|experiments/[^/\s?#\"]+/assignments)/)([^/\s?#\"]+)")
_QUERY_ID = re.compile(r"([?&](?:customer|external_id)=)([^&\s#\"]+)")


def _pseudonymise(match: re.Match) -> str:
    head, value = match.group(1), match.group(2)
    if value in _ROUTES:
        return match.group(0)
    return f"{head}~{customer_pseudonym(unquote(value.replace('+', ' ')))}"


def customer_ids_redact(text: str) -> str:
    """``text`` with every customer id in an API path or query replaced by its pseudonym."""
    if "/api/v1/" not in text:
        return text
    return _QUERY_ID.sub(_pseudonymise, _PATH_ID.sub(_pseudonymise, text))


class CustomerIdLogFilter(logging.Filter):
    """Rewrites the record's message; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as usual
            return True
        redacted = customer_ids_redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
            # Django's request logs carry the request: its path stays out of
            # formatters that print it.
            if hasattr(record, "request"):
                record.request = None
        return True
