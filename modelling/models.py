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
        CHURN = "churn", "Churn risk (no purchase in the next 90 days)"
        VALUE = "value", "Expected revenue in the next 90 days"

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
    # Uplift models with guardrail models: the predicted change of each
    # guardrail metric per arm, {"unsubscribes": {"email": 0.004, ...}, ...}.
    # The treated outcome per arm is not stored: it is response + uplift_by_arm
    # exactly (both come from one forward pass), so targeting reads it as that sum.
    # NULL: written without guardrail models (e.g. by a frame that predates them).
    guardrail_by_arm = models.JSONField(null=True, blank=True, default=dict)
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
    # The inputs as used: costs per arm, value, budget, max_contacts, arm
    # capacity, guardrail prices and caps, eligible count (for the record).
    parameters = models.JSONField(default=dict)
    size = models.PositiveIntegerField(default=0)
    total_cost = models.FloatField(default=0.0)
    expected_profit = models.FloatField(default=0.0)
    expected_conversions = models.FloatField(default=0.0)
    # Expected profit against the number of customers contacted, for the chart.
    profit_curve = models.JSONField(default=dict, blank=True)
    # {arm name: customers}, and {guardrail metric: expected extra events}.
    contacts_by_arm = models.JSONField(default=dict, blank=True)
    guardrail_harm = models.JSONField(default=dict, blank=True)
    # sha256 of the entries as text lines "customer_id,arm,rank\n" in rank order.
    digest = models.CharField(max_length=64, blank=True)
    # The held-out (doubly robust) evaluation and its baselines:
    # modelling.targeting_evaluation.
    evaluation = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Downloading whom to contact (personal data leaving the platform).
        permissions = [("export_targetinglist", "Can export targeting lists")]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.size} customers ({self.created_at:%Y-%m-%d})"


class TargetingEntry(models.Model):
    # Like scores, entries are derived rows written a million at a time for
    # ids just read: the database checks no foreign keys (checking them at
    # commit cost as long as writing the rows) and keeps no index of its own
    # on either column (the unique constraints' indexes lead with the list);
    # Django still cascades deletes, and a customer's entries are found by a scan.
    targeting_list = models.ForeignKey(TargetingList, on_delete=models.CASCADE,
                                       related_name="entries", db_constraint=False,
                                       db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+",
                                 db_constraint=False, db_index=False)
    rank = models.PositiveIntegerField()
    arm = models.CharField(max_length=64)
    uplift = models.FloatField()  # of the chosen arm
    expected_profit = models.FloatField()
    # Each arm's uplift is not copied here: modelling.targeting.targeting_entries
    # joins it from the version's scores.

    class Meta:
        ordering = ["targeting_list", "rank"]
        # Both are implied by how targeting writes a list, and both stay: one
        # entry per customer is the invariant that matters (a customer is sent
        # one offer; follow-ups look a customer's offer up by this index), and
        # the rank index serves pages and the CSV in rank order while costing
        # little, the rows being written in rank order (appended, not scattered).
        constraints = [
            models.UniqueConstraint(fields=["targeting_list", "customer"],
                                    name="targeting_entry_unique_customer"),
            models.UniqueConstraint(fields=["targeting_list", "rank"],
                                    name="targeting_entry_unique_rank"),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} {self.customer_id} -> {self.arm}"


class TargetingFollowUp(models.Model):
    """A field test of a targeting list's policy: policy / random / holdout on its population.

    The experiment holds the groups (its arms) and, once started, the
    assignments; ``plan`` records how the random group is drawn (contact rate
    and offer mix of the policy over the same population) and the economics
    the analysis charges; ``analysis`` is the latest incremental-profit
    comparison (modelling.followup).
    """

    targeting_list = models.ForeignKey(TargetingList, on_delete=models.PROTECT,
                                       related_name="follow_ups")
    experiment = models.OneToOneField(Experiment, on_delete=models.CASCADE,
                                      related_name="targeting_follow_up")
    # {"policy": 0.45, "random": 0.45, "holdout": 0.1}
    shares = models.JSONField()
    # eligible, on_list, contact_rate, offer_mix {offer: share}, economics, populated_at.
    plan = models.JSONField(default=dict)
    analysis = models.JSONField(default=dict, blank=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"follow-up of targeting list #{self.targeting_list_id} ({self.experiment.key})"


class TargetingFollowUpOffer(models.Model):
    """The offer a customer of a follow-up's random group is sent (contacted ones only).

    Drawn once, from a hash, when the follow-up starts; stored so that the
    plan export and the profit analysis read it in SQL (the policy group's
    offers are the list's entries, the holdout is never contacted).
    """

    follow_up = models.ForeignKey(TargetingFollowUp, on_delete=models.CASCADE,
                                  related_name="random_offers")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    offer = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follow_up", "customer"],
                                    name="followup_offer_one_per_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} -> {self.offer}"


class SegmentationRun(models.Model):
    """Learned segments: customers embedded, clustered, profiled (modelling.segmentation).

    ``embedding`` names the representation that won the measured comparison
    (``comparison``); the artifact holds it and the cluster centres, so later
    customers are mapped to the nearest centre of this very run.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE,
                                 related_name="segmentation_runs")
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    cutoff = models.DateTimeField()
    k_min = models.PositiveSmallIntegerField(default=2)
    k_max = models.PositiveSmallIntegerField(default=8)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    status_reason = models.TextField(blank=True)
    embedding = models.CharField(max_length=32, blank=True)
    # {"autoencoder": {"silhouette": .., "reconstruction": ..}, "sequence": {...}, "chosen": ..}
    comparison = models.JSONField(default=dict, blank=True)
    # {k: silhouette} over the manager's range; the chosen k maximises it.
    k_scores = models.JSONField(default=dict, blank=True)
    k = models.PositiveSmallIntegerField(null=True, blank=True)
    customers = models.PositiveIntegerField(default=0)
    # A sample of customers on two axes (PCA of the embedding) for the map:
    # {"x": [...], "y": [...], "cluster": [...]}; no customer ids.
    map_points = models.JSONField(default=dict, blank=True)
    artifact_path = models.CharField(max_length=500, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    task_run = models.ForeignKey(TaskRun, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"segmentation #{self.pk} of {self.campaign} ({self.status})"


class SegmentCluster(models.Model):
    """One cluster of a run, its profile, and the segment it was saved as (if any)."""

    run = models.ForeignKey(SegmentationRun, on_delete=models.CASCADE, related_name="clusters")
    index = models.PositiveSmallIntegerField()
    size = models.PositiveIntegerField(default=0)
    # modelling.segmentation.cluster_profiles: distinguishing features, outcomes, per-arm effects.
    profile = models.JSONField(default=dict, blank=True)
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="segment_cluster_unique_index"),
        ]

    def __str__(self) -> str:
        return f"cluster {self.index} of run {self.run_id}"
