"""A model's life: trained versions, their scores, and the targeting lists built from them.

The champion (per campaign and kind) changes only through
modelling.registry, never by a failed or worse retrain.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import TaskRun
from experiments.models import Experiment
from marketing.models import Campaign, Customer, Segment


class ModelVersion(models.Model):
    """A trained uplift or response model: an artifact plus its held-out quality.

    The champion (per campaign and kind) is what scoring uses; it changes only
    through modelling.registry, never by a failed or worse retrain.
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
    # Why it predicts what it does, on held-out rows (modelling.explanations):
    # {"method", "drivers": {arm: [[feature, importance], ...]}, "rules": {...}, ...}.
    explanations = models.JSONField(default=dict, blank=True)
    # The number champions are chosen by: held-out Qini for uplift models,
    # held-out ROC AUC for response models (see modelling.registry).
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
    # written only by modelling.scoring for ids it has just read, a million
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
