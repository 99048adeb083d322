"""What the experiments hold about a customer, for marketing.privacy's export.

Assignments and exposures stay after erasure (the counts per arm must not
move); they name the experiment and arm only.
"""

from __future__ import annotations

from experiments.models import Assignment, Exposure
from marketing.models import Customer


def customer_assignments_export(customer: Customer) -> list[dict]:
    return [
        {"experiment": a.experiment.key, "arm": a.arm.name, "assigned_at": a.assigned_at.isoformat()}
        for a in Assignment.objects.filter(customer=customer)
        .select_related("experiment", "arm").order_by("assigned_at", "id")
    ]


def customer_exposures_export(customer: Customer) -> list[dict]:
    return [
        {"experiment": e.assignment.experiment.key, "exposed_at": e.exposed_at.isoformat(),
         "idempotency_key": e.idempotency_key}
        for e in Exposure.objects.filter(assignment__customer=customer)
        .select_related("assignment__experiment").order_by("exposed_at", "id")
    ]
