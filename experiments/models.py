"""Experiments, their arms and metrics, assignments and exposures.

One assignment per customer per experiment and one control arm per
experiment are database constraints. Status changes go through
experiments.services.experiment_transition, which validates them.
"""

from __future__ import annotations

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django_celery_beat.models import PeriodicTask

from marketing.models import Campaign, Customer, Event, Segment, slug_validator


def new_salt() -> str:
    return secrets.token_hex(8)


class Experiment(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        ARCHIVED = "archived", "Archived"

    # Allowed status changes; anything else is refused by the service.
    TRANSITIONS = {
        Status.DRAFT: {Status.RUNNING, Status.ARCHIVED},
        Status.RUNNING: {Status.STOPPED},
        Status.STOPPED: {Status.ARCHIVED},
        Status.ARCHIVED: set(),
    }

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="experiments")
    key = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=128)
    hypothesis = models.TextField(blank=True)
    # Input to the assignment hash; changing it would reshuffle new customers,
    # so it is fixed at creation.
    salt = models.CharField(max_length=32, default=new_salt)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    eligibility_segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Experiments in the same non-empty layer never share a customer.
    layer = models.CharField(max_length=64, blank=True, default="")
    traffic_fraction = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    attribution_window_days = models.PositiveIntegerField(
        default=14, validators=[MinValueValidator(1)]
    )
    # Total customers the test plans to assign: tunes the sequential test
    # (where its interval is tightest) and the power figures.
    planned_sample_size = models.PositiveIntegerField(null=True, blank=True)
    # Always-valid (sequential) p-values, so results can be read every day.
    sequential_testing = models.BooleanField(default=True)
    alpha = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.001), MaxValueValidator(0.5)]
    )
    # Segments and categorical attributes the analysis breaks results down by.
    breakdown_segments = models.ManyToManyField(Segment, blank=True, related_name="+")
    breakdown_attributes = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(traffic_fraction__gte=0) & Q(traffic_fraction__lte=1),
                name="experiment_traffic_fraction_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Arm(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=64)
    weight = models.FloatField(validators=[MinValueValidator(0.0)])
    is_control = models.BooleanField(default=False)
    # Whether being in this arm means the customer is contacted; customers
    # without marketing consent are only ever placed in non-contact arms.
    contacts_customer = models.BooleanField(default=True)

    class Meta:
        ordering = ["experiment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="arm_unique_name"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(is_control=True), name="arm_one_control"
            ),
            models.CheckConstraint(condition=Q(weight__gte=0), name="arm_weight_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class Metric(models.Model):
    class Aggregation(models.TextChoices):
        CONVERTED = "converted", "Converted (yes/no)"
        COUNT = "count", "Count of events"
        SUM = "sum", "Sum of event value"

    class Role(models.TextChoices):
        PRIMARY = "primary", "Primary"
        SECONDARY = "secondary", "Secondary"
        GUARDRAIL = "guardrail", "Guardrail"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=64, validators=[slug_validator])
    event_kind = models.CharField(max_length=32, choices=Event.Kind.choices)
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.SECONDARY)
    # False for metrics where a rise is bad (unsubscribes, complaints).
    higher_is_better = models.BooleanField(default=True)
    # Smallest relative lift worth detecting (0.05 = 5%), for power figures.
    minimum_detectable_effect = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0001)]
    )

    class Meta:
        ordering = ["experiment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="metric_unique_name"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(role="primary"), name="metric_one_primary"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Assignment(models.Model):
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="assignments"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="assignments")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="assignments")
    assigned_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "customer"], name="assignment_one_per_customer"
            ),
        ]
        indexes = [models.Index(fields=["experiment", "arm"])]

    def __str__(self) -> str:
        return f"{self.customer_id} -> {self.arm_id}"


class Exposure(models.Model):
    """The customer actually received the treatment (e.g. the e-mail was sent)."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="exposures")
    exposed_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=128)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "idempotency_key"], name="exposure_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"exposure of {self.assignment_id} at {self.exposed_at:%Y-%m-%d %H:%M}"


class TrueEffect(models.Model):
    """Known per-customer effects of an arm, only for simulated (demo) data.

    Lets model quality be measured as sqrt(PEHE) against the truth.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+")
    # Change in conversion probability and in expected revenue versus control.
    conversion_uplift = models.FloatField()
    revenue_uplift = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "customer", "arm"], name="true_effect_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"true effect of {self.arm_id} on {self.customer_id}"


class TaskRun(models.Model):
    """Status and progress of one background job, shown in the admin and API.

    Tasks receive the run id, claim the run with a conditional update and
    report progress here, so a re-delivered task sees the run already done.
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

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["name", "status"])]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk} ({self.status})"


class AnalysisResult(models.Model):
    """One snapshot of an experiment's analysis; the history plots effects over time."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="analyses")
    created_at = models.DateTimeField(auto_now_add=True)
    task_run = models.ForeignKey(TaskRun, null=True, blank=True, on_delete=models.SET_NULL)
    customers = models.PositiveIntegerField()
    decision = models.CharField(max_length=32)
    decision_reasons = models.JSONField(default=list)
    srm_p_value = models.FloatField(null=True)
    # The full analysis from experiments.stats (per arm, metric, segment).
    payload = models.JSONField()

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]
        indexes = [models.Index(fields=["experiment", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.experiment} @ {self.created_at:%Y-%m-%d %H:%M}: {self.decision}"


class ModelVersion(models.Model):
    """A trained uplift or response model: an artifact plus its held-out quality.

    The champion (per campaign and kind) is what scoring uses; it changes only
    through experiments.registry, never by a failed or worse retrain.
    """

    class Kind(models.TextChoices):
        UPLIFT = "uplift", "Uplift (effect of contact)"
        RESPONSE = "response", "Response (propensity to convert)"

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        REJECTED = "rejected", "Rejected by sanity checks"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="models")
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="models"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    estimator = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    feature_spec = models.JSONField(default=dict)
    target_metric = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    status_reason = models.TextField(blank=True)
    # Held-out quality: {"arms": {name: {"qini": .., "auuc": .., "uplift_at_30": ..}}, ...}
    metrics = models.JSONField(default=dict, blank=True)
    curves = models.JSONField(default=dict, blank=True)
    # Training distribution of each feature, for the drift (PSI) check.
    feature_reference = models.JSONField(default=dict, blank=True)
    # The number champions are chosen by: held-out Qini for uplift models,
    # held-out ROC AUC for response models (see experiments.registry).
    selection_score = models.FloatField(null=True, blank=True)
    training_seconds = models.FloatField(null=True, blank=True)
    rows_train = models.PositiveIntegerField(default=0)
    rows_validation = models.PositiveIntegerField(default=0)
    rows_test = models.PositiveIntegerField(default=0)
    artifact_path = models.CharField(max_length=500, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    is_champion = models.BooleanField(default=False)
    task_run = models.ForeignKey(TaskRun, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "kind"], condition=Q(is_champion=True),
                name="model_one_champion_per_campaign_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.estimator} #{self.pk} ({self.status})"


class CustomerScoreQuerySet(models.QuerySet):
    def of_customer(self, customer: Customer) -> CustomerScoreQuerySet:
        """The customer's scores, read through the (model version, customer) index.

        Scores have no index on the customer alone: maintaining it cost a
        tenth of every scoring run's time, and there are few model versions.
        """
        versions = list(ModelVersion.objects.values_list("id", flat=True))
        return self.filter(model_version_id__in=versions, customer=customer)


class CustomerScore(models.Model):
    """A model version's prediction for one customer."""

    # No foreign-key constraints in the database: scores are derived rows,
    # written only by experiments.scoring for ids it has just read, a million
    # at a time, where checking each row's keys at commit cost as much as
    # writing it. Deletes still cascade (Django collects them). The version
    # needs no index of its own: the unique constraint's index leads with it.
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE,
                                      related_name="scores", db_constraint=False,
                                      db_index=False)
    # Not indexed on its own (see CustomerScoreQuerySet.of_customer); deleting
    # a customer, which erasure never does, scans the table to cascade.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="scores",
                                 db_constraint=False, db_index=False)
    # Uplift models: predicted effect of the best arm and of every arm.
    uplift = models.FloatField(null=True, blank=True)
    best_arm = models.CharField(max_length=64, blank=True)
    uplift_by_arm = models.JSONField(default=dict, blank=True)
    # Response models (and uplift models' predicted control outcome).
    response = models.FloatField(null=True, blank=True)
    scored_at = models.DateTimeField()

    objects = CustomerScoreQuerySet.as_manager()

    class Meta:
        # No index on uplift: scores are listed by id and targeting reads a
        # version's scores whole, while a million random uplifts inserted into
        # a btree cost a third of a scoring run's writing time.
        constraints = [
            models.UniqueConstraint(fields=["model_version", "customer"],
                                    name="score_one_per_customer"),
        ]

    def __str__(self) -> str:
        return f"score of {self.customer_id} by {self.model_version_id}"


class CampaignSchedule(models.Model):
    """A recurring job for a campaign, run by Celery beat (django-celery-beat).

    Saving one through experiments.schedules keeps its PeriodicTask in step,
    so managers edit schedules here and beat picks them up from the database.
    """

    class Action(models.TextChoices):
        ANALYSE = "analyse", "Refresh the analysis of running experiments"
        RETRAIN = "retrain", "Retrain the uplift model"
        RESCORE = "rescore", "Rescore customers with the champion"
        DRIFT_CHECK = "drift_check", "Check feature drift; retrain when it is large"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="schedules")
    action = models.CharField(max_length=16, choices=Action.choices)
    every_hours = models.PositiveIntegerField(default=24, validators=[MinValueValidator(1)])
    enabled = models.BooleanField(default=True)
    # Drift check only: retrain when any feature's PSI exceeds this.
    psi_threshold = models.FloatField(default=0.2, validators=[MinValueValidator(0.0)])
    periodic_task = models.OneToOneField(PeriodicTask, null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "action"], name="schedule_one_per_action"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.get_action_display()} every {self.every_hours} h"


class TargetingList(models.Model):
    """Whom to contact, chosen by models_dl.policy from a model version's scores."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="target_lists")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT,
                                      related_name="target_lists")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    # The inputs as used: cost, value, budget, max_contacts (for the record).
    parameters = models.JSONField(default=dict)
    size = models.PositiveIntegerField(default=0)
    total_cost = models.FloatField(default=0.0)
    expected_profit = models.FloatField(default=0.0)
    expected_conversions = models.FloatField(default=0.0)
    # Expected profit against the number of customers contacted, for the chart.
    profit_curve = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.size} customers ({self.created_at:%Y-%m-%d})"


class TargetingEntry(models.Model):
    targeting_list = models.ForeignKey(TargetingList, on_delete=models.CASCADE,
                                       related_name="entries")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveIntegerField()
    arm = models.CharField(max_length=64)
    uplift = models.FloatField()
    expected_profit = models.FloatField()

    class Meta:
        ordering = ["targeting_list", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["targeting_list", "customer"],
                                    name="targeting_entry_unique_customer"),
            models.UniqueConstraint(fields=["targeting_list", "rank"],
                                    name="targeting_entry_unique_rank"),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} {self.customer_id} -> {self.arm}"
