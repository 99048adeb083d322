"""Backpressure on the endpoints that queue background work: a limit per API key.

Rate limits count requests; a request that queues training or scoring costs
minutes of a worker, so one key could fill the queue for everyone within
its rate (698 tasks in 270 s). Each key may have at most
API_MAX_ACTIVE_TASKS_PER_KEY runs queued or running; one more is a 429 with
Retry-After and a message saying how many are active. The runs are tagged
with the key that asked (TaskRun.api_key), which is what is counted.

The check and the tagging are not one transaction (the queueing service
commits its own, and sends the task after), so requests of one key arriving
at the same instant can pass the limit by how many are in flight at once;
the limit is a brake on runaway clients, not an exact quota. Staff users
queue from the admin, which this does not limit.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException

from core.models import ApiKey, TaskRun

ACTIVE = (TaskRun.Status.QUEUED, TaskRun.Status.RUNNING)


class TooManyTasks(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_tasks"

    def __init__(self, active: int, limit: int, wait: int):
        self.wait = wait  # DRF's handler turns it into the Retry-After header
        super().__init__(
            f"This API key has {active} background tasks queued or running; at most {limit} "
            f"are allowed at once (API_MAX_ACTIVE_TASKS_PER_KEY). Wait for some to finish "
            f"(GET /api/v1/tasks/?status=running) and try again in {wait} s.")


def task_queue_limited(request, queue: Callable[[], TaskRun]) -> TaskRun:
    """Run ``queue`` (a jobs.requests call) unless the key has too much work active."""
    key = request.auth if isinstance(request.auth, ApiKey) else None
    if key is None:
        return queue()
    limit = settings.API_MAX_ACTIVE_TASKS_PER_KEY
    active = TaskRun.objects.filter(api_key=key, status__in=ACTIVE).count()
    if active >= limit:
        raise TooManyTasks(active, limit, settings.API_TASKS_RETRY_AFTER_SECONDS)
    run = queue()
    TaskRun.objects.filter(pk=run.pk).update(api_key=key)
    run.api_key = key
    return run
