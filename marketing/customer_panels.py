"""Panels that apps above marketing add to a customer's admin page.

marketing never imports those apps (see ARCHITECTURE.md): each registers a
panel in its AppConfig.ready, as they do for the data export
(marketing.privacy). A panel is a function of the customer returning safe
HTML, or None when it has nothing to show for them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.safestring import SafeString

from marketing.models import Customer

_PANELS: dict[str, Callable[[Customer], SafeString | None]] = {}


def customer_panel_register(name: str, render: Callable[[Customer], SafeString | None]) -> None:
    """Show ``render(customer)`` on every customer's admin page (idempotent per name)."""
    _PANELS[name] = render


def customer_panels(customer: Customer) -> list[SafeString]:
    """The registered panels' HTML for ``customer``, in registration order."""
    return [html for render in _PANELS.values() if (html := render(customer))]
