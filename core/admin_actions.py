"""What every admin action does with a service's answer: a message per outcome."""

from collections.abc import Callable, Iterable

from django.contrib import messages
from django.core.exceptions import ValidationError


def action_report(request, fn: Callable, items: Iterable, done: str) -> None:
    """Call ``fn`` on each item; stop at the first refusal and show its reason."""
    for item in items:
        try:
            fn(item)
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
