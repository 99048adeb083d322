"""What every admin action does with a service's answer: a message per outcome, an audit entry."""

from collections.abc import Callable, Iterable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import models, transaction

from core.audit import audit_record, audit_target, audit_task_run
from core.models import TaskRun


def action_audit(request, action: str, item, result) -> None:
    """One entry for what an admin button did: the run it queued, or the row it made or moved."""
    if isinstance(result, TaskRun):
        audit_task_run(result, request=request)
    else:
        audit_record(action, audit_target(result if isinstance(result, models.Model) else item),
                     request=request)


def action_report(request, fn: Callable, items: Iterable, done: str, *, audit: str) -> None:
    """Call ``fn`` on each item; stop at the first refusal and show its reason.

    ``audit`` is the ``AuditEntry.Action`` recorded for each item done, in the
    same transaction (a queued task is recorded as ``run`` with its TaskRun).
    """
    for item in items:
        try:
            with transaction.atomic():
                result = fn(item)
                action_audit(request, audit, item, result)
        except ValidationError as exc:
            messages.error(request, f"{item}: {'; '.join(exc.messages)}")
            return
    messages.info(request, done)


class TaskActionsMixin:
    """For ModelAdmins whose actions queue background work.

    Declare such actions with ``@admin.action(..., permissions=["run_tasks"])``:
    Django then hides them from users without ``core.run_tasks`` and refuses
    a forged POST of them (the action is not in ``get_actions``), while view
    permission alone still lets an Analyst see the list.
    """

    def has_run_tasks_permission(self, request) -> bool:
        return request.user.has_perm("core.run_tasks")
