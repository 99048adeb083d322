"""The customer's experiment assignments, a panel on their admin page.

Registered with marketing.customer_panels in ExperimentsConfig.ready
(marketing never imports experiments). One query, newest first, bounded.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from experiments.models import Assignment
from marketing.models import Customer

SHOWN = 50


def customer_assignments_panel(customer: Customer) -> SafeString | None:
    """Experiment, arm and date of each assignment; None when the customer has none."""
    rows = list(Assignment.objects.filter(customer=customer)
                .select_related("experiment", "arm").order_by("-assigned_at", "-id")[:SHOWN])
    return render_to_string("admin/experiments/customer_assignments.html",
                            {"assignments": rows, "shown": SHOWN})
