"""Experiments, their arms and metrics, assignments and exposures.

One assignment per customer per experiment and one control arm per
experiment are database constraints. Status changes go through
experiments.services.experiment_transition, which validates them.
"""

from __future__ import annotations

import math
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.models import TaskRun
from marketing.models import Campaign, Customer, Event, Segment, slug_validator


def new_salt() -> str:
    return secrets.token_hex(8)


# Money per contact or per conversion: non-negative and finite. The bound is
# how "finite" reads in a check constraint on both databases (PostgreSQL
# orders NaN above every number, so NaN fails it too).
MONEY_MAX = 1e12


def finite_validator(value: float) -> None:
    if not math.isfinite(value):  # NaN passes the min/max validators' comparisons
        raise ValidationError("must be a finite number", code="not_finite")


money_validators = [finite_validator, MinValueValidator(0.0), MaxValueValidator(MONEY_MAX)]


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
    # Economics of this arm for targeting (modelling.targeting): the cost of
    # one contact (NULL = the campaign's cost_per_contact) and the cost paid
    # on every conversion in the arm, e.g. a coupon's margin (NULL = 0).
    cost_per_contact = models.FloatField(null=True, blank=True, validators=money_validators)
    cost_per_conversion = models.FloatField(null=True, blank=True, validators=money_validators)

    class Meta:
        ordering = ["experiment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="arm_unique_name"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(is_control=True), name="arm_one_control"
            ),
            models.CheckConstraint(condition=Q(weight__gte=0), name="arm_weight_non_negative"),
            models.CheckConstraint(
                condition=Q(cost_per_contact__isnull=True) | (
                    Q(cost_per_contact__gte=0) & Q(cost_per_contact__lte=MONEY_MAX)),
                name="arm_cost_per_contact_finite_non_negative"),
            models.CheckConstraint(
                condition=Q(cost_per_conversion__isnull=True) | (
                    Q(cost_per_conversion__gte=0) & Q(cost_per_conversion__lte=MONEY_MAX)),
                name="arm_cost_per_conversion_finite_non_negative"),
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


class TrueBehaviourType(models.Model):
    """A simulated customer's latent behavioural type (demo data only, like TrueEffect).

    Written by experiments.demo_behaviour; lets learned segments be scored
    against the truth (adjusted Rand index).
    """

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="+")
    behaviour_type = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.behaviour_type}"


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
