"""Customers, their CRM attributes and behavioural events, segments, campaigns.

Invariants that matter for correctness are database constraints, not only
Python checks: one customer per CRM id, one event per (source, idempotency
key), non-negative campaign money.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

slug_validator = RegexValidator(
    r"^[a-z][a-z0-9_]*$", "Use lower-case letters, digits and underscores, starting with a letter."
)


class CustomerAttribute(models.Model):
    """A declared CRM attribute; customer attribute values are validated against it."""

    class Kind(models.TextChoices):
        NUMERIC = "numeric", "Numeric"
        CATEGORICAL = "categorical", "Categorical"
        BOOLEAN = "boolean", "Boolean"

    key = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    label = models.CharField(max_length=128, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # For categorical attributes: the allowed values. Empty means any string.
    choices = models.JSONField(default=list, blank=True)
    required = models.BooleanField(default=False)
    # Personal data is excluded from model features and wiped on erasure.
    is_personal = models.BooleanField(default=False)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Customer(models.Model):
    # The CRM's id as the CRM sends it (the API answers with it); erasure
    # replaces it with "erased:<pseudonym>" (marketing.privacy), and lookups
    # by the CRM's id find the erased row through the same pseudonym.
    external_id = models.CharField(max_length=128, unique=True, help_text="The CRM's customer id.")
    attributes = models.JSONField(default=dict, blank=True)
    marketing_consent = models.BooleanField(default=False)
    # When the stored consent was decided: a consent change older than this
    # is not applied (marketing.consent), so no late sync undoes a withdrawal.
    consent_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set when the customer's personal data was erased; the row stays so that
    # experiment counts do not change retroactively.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        permissions = [
            # Personal data leaving the platform, and its irreversible removal.
            ("export_personal_data", "Can export a customer's personal data"),
            ("erase_personal_data", "Can erase a customer's personal data"),
        ]

    def __str__(self) -> str:
        # Not the CRM id: Django's admin log stores this text, and it outlives erasure.
        return f"customer {self.pk}"


class ConsentChange(models.Model):
    """One change of a customer's marketing consent: what, when, from where (marketing.consent).

    ``decided_at`` is when the consent was given or withdrawn (the sender's
    ``marketing_consent_at``, else when the platform received it);
    ``source`` is who sent it ("api-key:crm", "user:anna", "erasure").
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE,
                                 related_name="consent_changes")
    consent = models.BooleanField()
    decided_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    source = models.CharField(max_length=160, blank=True)

    class Meta:
        ordering = ["customer", "decided_at", "id"]

    def __str__(self) -> str:
        return f"consent {self.consent} for {self.customer_id} at {self.decided_at:%Y-%m-%d %H:%M}"


class CustomerAttributeVersion(models.Model):
    """A customer's CRM attributes and consent over one span of time, [valid_from, valid_to).

    Training rows, segment rules and experiment breakdowns read a customer as
    of a cutoff; ``Customer.attributes`` is only the latest state, and a
    value changed after the cutoff (joining the loyalty programme because of
    the campaign) would leak into them. So every write that changes the
    attributes or the consent closes the customer's current version
    (``valid_to`` = the write's time) and opens a new one from that time:
    the chain has no gaps or overlaps, the current version (``valid_to``
    NULL, one per customer) equals the customer row, and a write that
    changes nothing adds no version.

    One row per state, not one per key: every reader wants all of a
    customer's attributes at one instant, which is then one row (one index
    probe, and the same JSON expressions that read ``Customer.attributes``),
    and a write that changes several keys and the consent at once closes
    one row and opens one instead of one per key.

    ``valid_from`` is when the platform recorded the state (the writer's
    clock); customers that existed before this history got one version from
    their ``created_at``. ``is_first`` marks the first version of each
    customer, which also stands for any time before its ``valid_from``:
    customers loaded after the fact (an import of a past test, a CRM synced
    after an experiment began) describe themselves as they were first known,
    and nothing earlier is known. A reader as of t takes the version with
    ``(valid_from <= t or is_first) and (valid_to is NULL or valid_to > t)``:
    exactly one per customer. No check ties valid_to to valid_from: a writer
    whose clock is behind the previous write leaves an empty interval that
    no reader selects, rather than a failed upsert.

    Erasure removes personal attributes from every version (marketing.privacy).
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE,
                                 related_name="attribute_versions",
                                 db_index=False)  # (customer, valid_from) serves
    attributes = models.JSONField(default=dict, blank=True)
    marketing_consent = models.BooleanField(default=False)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    is_first = models.BooleanField(default=False)

    class Meta:
        ordering = ["customer", "valid_from", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=Q(valid_to__isnull=True),
                                    name="customer_attribute_version_one_current"),
        ]
        indexes = [
            models.Index(fields=["customer", "valid_from"]),
            # "Did anyone's attributes change after t?": readers as of a recent
            # t answer from the customer rows when not (few rows, small index).
            models.Index(fields=["valid_to", "customer"], condition=Q(valid_to__isnull=False),
                         name="attribute_version_closed"),
        ]

    def __str__(self) -> str:
        return f"attributes of {self.customer_id} from {self.valid_from:%Y-%m-%d %H:%M}"


class Event(models.Model):
    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        VISIT = "visit", "Visit"
        EMAIL_OPEN = "email_open", "E-mail open"
        EMAIL_CLICK = "email_click", "E-mail click"
        CART_ADD = "cart_add", "Add to cart"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    # Revenue for purchases; 0 for events without a value.
    value = models.FloatField(default=0.0)
    properties = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=64, default="api")
    # Set by the sender so that a retried delivery is not counted twice. NULL
    # (not "") for "no key", so keyless events never collide in the constraint.
    # Stored as its keyed pseudonym (core.pseudonyms): senders build keys from
    # customer ids, which may be e-mail addresses.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_unique_source_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "kind", "occurred_at"]),
            # Time slices across customers: the events that enter or leave a
            # feature window between a behaviour snapshot and a later cutoff,
            # for one chunk of customer ids (checked inside the index), and
            # the ones that arrived after the snapshot was built.
            models.Index(fields=["occurred_at", "customer"]),
            models.Index(fields=["received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind}@{self.occurred_at:%Y-%m-%d} ({self.customer_id})"


class BehaviourSnapshot(models.Model):
    """Every customer's behavioural aggregates as of one time (see marketing.behaviour_snapshots).

    Scoring as of a later cutoff starts from it and reads only the events
    that entered or left a window in between.
    """

    spec_key = models.CharField(max_length=255)  # event kinds and windows it covers
    as_of = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)  # when the build started
    ready_at = models.DateTimeField(null=True, blank=True)
    customers = models.PositiveIntegerField(default=0)
    build_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["spec_key", "-as_of"])]

    def __str__(self) -> str:
        return f"behaviour snapshot {self.id} as of {self.as_of:%Y-%m-%d %H:%M}"


class BehaviourSnapshotPart(models.Model):
    """One id range of a snapshot, as arrays: a chunk is read with one row, not thousands."""

    snapshot = models.ForeignKey(BehaviourSnapshot, on_delete=models.CASCADE,
                                 related_name="parts", db_index=False)  # (snapshot, low) serves
    low = models.BigIntegerField()  # exclusive
    high = models.BigIntegerField()  # inclusive
    customer_ids = models.BinaryField()  # int64, ascending
    values = models.BinaryField()  # float64, one row per customer id

    class Meta:
        indexes = [models.Index(fields=["snapshot", "low"])]

    def __str__(self) -> str:
        return f"part ({self.low}, {self.high}] of snapshot {self.snapshot_id}"


class Segment(models.Model):
    """A rule over attributes and behavioural aggregates, stored as data.

    See marketing.segment_rules for the grammar; rules compile to one SQL
    query that works on SQLite and PostgreSQL.
    """

    key = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=128)
    description = models.TextField(blank=True)
    rule = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Cached by the segment_size task for the admin; the rule is the truth.
    member_count = models.PositiveIntegerField(null=True, blank=True)
    counted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        SMS = "sms", "SMS"
        PUSH = "push", "Push notification"
        DIRECT_MAIL = "direct_mail", "Direct mail"
        CALL = "call", "Phone call"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"

    key = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=128)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    cost_per_contact = models.DecimalField(
        max_digits=10, decimal_places=4, validators=[MinValueValidator(0)]
    )
    value_per_conversion = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(0)]
    )
    budget = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # Guardrail economics per event kind (e.g. "unsubscribe"): money one extra
    # event costs the business, and the most extra events a targeting list may
    # be expected to cause. Validated by marketing.services.campaign_harm_clean.
    harm_prices = models.JSONField(default=dict, blank=True)
    harm_caps = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cost_per_contact__gte=0) & Q(value_per_conversion__gte=0),
                name="campaign_money_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(budget__gte=0),
                name="campaign_budget_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ErasureRecord(models.Model):
    """Proof that a customer's personal data was erased, and what was wiped.

    Holds no personal data itself: attribute keys, not values.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="erasures")
    erased_at = models.DateTimeField()
    requested_by = models.CharField(max_length=128, blank=True)
    attributes_removed = models.JSONField(default=list, blank=True)
    events_scrubbed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-erased_at", "-id"]

    def __str__(self) -> str:
        return f"erasure of {self.customer_id} at {self.erased_at:%Y-%m-%d %H:%M}"


class CustomerPrediction(models.Model):
    """A published behaviour score of one customer, readable by segment rules and the API.

    Denormalised from the model app (which marketing may not import): the
    champion churn and value models' scoring writes one row per (customer,
    name), replacing the previous champion's. ``model_version_id`` names the
    version that wrote it, as a plain number for the same reason.
    """

    class Name(models.TextChoices):
        CHURN_RISK = "churn_risk", "Churn risk (no purchase in the next 90 days)"
        EXPECTED_REVENUE_90D = "expected_revenue_90d", "Expected revenue in the next 90 days"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="predictions")
    name = models.CharField(max_length=32, choices=Name.choices)
    value = models.FloatField()
    model_version_id = models.BigIntegerField()
    scored_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "customer"],
                                    name="customer_prediction_one_per_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.customer_id}: {self.value:.3f}"


class ClusterMembership(models.Model):
    """Which learned cluster of a segmentation run a customer belongs to.

    Written by the model app's segmentation (modelling.segmentation): every
    customer of the run, and later customers mapped to the nearest centre of
    the run's saved clustering. A segment rule leaf ``{"cluster": {"run": R,
    "index": K}}`` reads it, so a cluster saved as a segment keeps one stable
    definition. ``run_id`` is a plain number (marketing may not import modelling).
    """

    run_id = models.BigIntegerField()
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    cluster = models.PositiveSmallIntegerField()
    assigned_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run_id", "customer"],
                                    name="cluster_membership_one_per_run"),
        ]
        indexes = [models.Index(fields=["run_id", "cluster"], name="cluster_membership_cluster")]

    def __str__(self) -> str:
        return f"{self.customer_id} in cluster {self.cluster} of run {self.run_id}"
