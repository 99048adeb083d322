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
