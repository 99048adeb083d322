"""What every app uses: background job runs, API credentials and the audit log."""

from __future__ import annotations

from django.db import models


class TaskRun(models.Model):
    """Status, progress and lease of one background job, shown in the admin and API.

    Tasks receive the run id and claim the run with a conditional update,
    which gives the claimer a lease (``lease_token``, renewed by a heartbeat
    until ``lease_expires_at``). A run whose lease ran out lost its worker:
    the reaper (core.task_runs.task_runs_reap) starts it over when ``rerun``
    says it is safe to repeat, and fails it with the reason otherwise.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Delivery (core.task_runs). The Celery task to (re-)send with the run id.
    task = models.CharField(max_length=200, blank=True)
    # Safe to start over after a lost worker; False: at most once, reaped as failed.
    rerun = models.BooleanField(default=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the message was last handed to the broker; NULL: never (broker down).
    sent_at = models.DateTimeField(null=True, blank=True)
    # The current claim: writes of an older claim (a worker presumed lost) are ignored.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_holder = models.CharField(max_length=200, blank=True)  # "host:pid"
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The API key that asked for it, if one did: its active runs are limited
    # (core.api.backpressure).
    api_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="task_runs")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["name", "status"], name="taskrun_name_status"),
                   models.Index(fields=["status", "lease_expires_at"],
                                name="taskrun_status_lease"),
                   models.Index(fields=["api_key", "status"], name="taskrun_api_key_status")]
        # Queueing analyses, training, scoring and targeting from the admin
        # (core.admin_actions.TaskActionsAdmin); the Campaign manager group has it.
        permissions = [("run_tasks", "Can run background tasks")]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk} ({self.status})"


class ApiKey(models.Model):
    """A credential for one CRM integration, sent as ``Authorization: Api-Key <key>``.

    The key is ``<prefix>.<secret>``: the prefix finds the row, and only the
    SHA-256 of the secret is stored. The secret is 256 random bits
    (``secrets.token_urlsafe(32)``), so a fast hash is enough: guessing is
    hopeless without a slow KDF, and a KDF would add its cost to every
    request. Read scope allows GET; write scope allows everything but the
    personal-data requests (a customer's export and erasure), which need
    privacy scope (which allows everything).
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Read and write"
        PRIVACY = "privacy", "Read, write, export and erase personal data"

    name = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Updated at most once a minute, so authentication stays one read.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.scope})"


class AuditEntry(models.Model):
    """One thing a person or integration did that a reviewer may ask about (core.audit)."""

    class Action(models.TextChoices):
        RUN = "run", "Ran a task"
        EXPORT = "export", "Exported"
        ERASE = "erase", "Erased"
        START = "start", "Started"
        STOP = "stop", "Stopped"
        CREATE = "create", "Created"
        CHANGE = "change", "Changed"
        DELETE = "delete", "Deleted"
        REVOKE = "revoke", "Revoked"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # "user:<username>", "api-key:<name>" or "system:<job>"; the user link is
    # kept too, but the text survives the user's deletion.
    actor = models.CharField(max_length=160)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    target = models.CharField(max_length=200)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"


class WorkerHeartbeat(models.Model):
    """When each Celery worker last ran beat's reaper (every TASK_REAPER_SECONDS).

    One tick goes to one worker, so "some row seen within two reaper
    intervals" means beat and at least one worker are alive: what a health
    check reads (core.task_runs.worker_heartbeat_latest).
    """

    worker = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.worker} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
