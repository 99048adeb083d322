"""Input and output shapes of the experiment endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.serializers import BulkRowsField
from core.bounds import AMOUNT_MAX, WEIGHT_MAX
from experiments.models import (
    AnalysisResult,
    Arm,
    Assignment,
    Experiment,
    Exposure,
    Metric,
    finite_validator,
)
from experiments.results import analysis_payload_public
from marketing.models import Event


class ArmSerializer(serializers.ModelSerializer):
    # Bounds: core.bounds (an absurd weight would take every customer).
    weight = serializers.FloatField(
        min_value=0, max_value=WEIGHT_MAX,
        help_text=f"Relative share of new customers, 0 to {WEIGHT_MAX:g} (0 closes the arm).")
    # DRF's FloatField lets NaN through its bounds: the model's finite check runs too.
    cost_per_contact = serializers.FloatField(
        min_value=0, max_value=AMOUNT_MAX, required=False, allow_null=True, default=None,
        validators=[finite_validator],
        help_text="Cost of one contact in this arm; null: the campaign's cost_per_contact.")
    cost_per_conversion = serializers.FloatField(
        min_value=0, max_value=AMOUNT_MAX, required=False, allow_null=True, default=None,
        validators=[finite_validator],
        help_text="Cost paid on every conversion in this arm (e.g. a coupon); null: 0.")

    class Meta:
        model = Arm
        fields = ["name", "weight", "is_control", "contacts_customer", "cost_per_contact",
                  "cost_per_conversion"]
        extra_kwargs = {"is_control": {"default": False}, "contacts_customer": {"default": True}}


class MetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = Metric
        fields = ["name", "event_kind", "aggregation", "role", "higher_is_better"]
        extra_kwargs = {"role": {"default": Metric.Role.SECONDARY},
                        "higher_is_better": {"default": True}}


class ExperimentInSerializer(serializers.Serializer):
    campaign = serializers.SlugField(max_length=64, help_text="The campaign's key.")
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=128)
    hypothesis = serializers.CharField(required=False, allow_blank=True, default="")
    arms = ArmSerializer(many=True, help_text="At least two; exactly one control.")
    metrics = MetricSerializer(many=True, help_text="Exactly one primary.")
    eligibility_segment = serializers.SlugField(
        max_length=64, required=False, allow_null=True, default=None,
        help_text="Key of the segment a customer must be in to be assigned.")
    attribution_window_days = serializers.IntegerField(min_value=1, max_value=3650, default=14)
    traffic_fraction = serializers.FloatField(min_value=0.0, max_value=1.0, default=1.0)
    layer = serializers.CharField(max_length=64, required=False, allow_blank=True, default="",
                                  help_text="Experiments in one layer never share a customer.")

    def validate_arms(self, arms):
        # Name uniqueness is a database constraint; say so before it is hit.
        names = [a["name"] for a in arms]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("arm names must be unique")
        return arms

    def validate_metrics(self, metrics):
        names = [m["name"] for m in metrics]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("metric names must be unique")
        return metrics


class ExperimentSerializer(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.key")
    eligibility_segment = serializers.SerializerMethodField()
    arms = ArmSerializer(many=True)
    metrics = MetricSerializer(many=True)

    class Meta:
        model = Experiment
        fields = ["key", "name", "hypothesis", "campaign", "status", "salt",
                  "eligibility_segment", "layer", "traffic_fraction", "attribution_window_days",
                  "arms", "metrics", "started_at", "ended_at", "created_at"]

    def get_eligibility_segment(self, experiment: Experiment) -> str | None:
        segment = experiment.eligibility_segment
        return segment.key if segment else None


class ExperimentFilterSerializer(serializers.Serializer):
    campaign = serializers.SlugField(required=False, max_length=64, help_text="Campaign key.")
    status = serializers.ChoiceField(choices=Experiment.Status.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)

    def filter(self, queryset):
        data = self.validated_data
        if "campaign" in data:
            queryset = queryset.filter(campaign__key=data["campaign"])
        if "status" in data:
            queryset = queryset.filter(status=data["status"])
        if "created_after" in data:
            queryset = queryset.filter(created_at__gte=data["created_after"])
        if "created_before" in data:
            queryset = queryset.filter(created_at__lt=data["created_before"])
        return queryset


class AssignInSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=128, trim_whitespace=False,
                                     help_text="The customer's external_id.")


class AssignmentDecisionSerializer(serializers.Serializer):
    customer = serializers.CharField(help_text="The customer's external_id.")
    arm = serializers.CharField(allow_null=True, help_text="Arm name, or null with a reason.")
    reason = serializers.CharField(help_text=(
        "assigned, already assigned, or why not: experiment is <status>, not running; "
        "not in eligibility segment <key>; outside the experiment's traffic sample; "
        "already in experiment <key> of layer <layer>; no marketing consent."))
    contacts_customer = serializers.BooleanField(
        allow_null=True, help_text="Whether the arm means contacting the customer.")
    created = serializers.BooleanField(help_text="True when this request made the assignment.")


class AssignBulkInSerializer(serializers.Serializer):
    customers = BulkRowsField(child=serializers.CharField(max_length=128),
                              help_text="External ids, at most 10,000.")


class AssignBulkResultSerializer(serializers.Serializer):
    assigned = serializers.IntegerField(help_text="Customers with an arm (new or stored).")
    created = serializers.IntegerField(help_text="Assignments made by this request.")
    decisions = AssignmentDecisionSerializer(many=True)


class AssignmentSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    arm = serializers.CharField(source="arm.name")

    class Meta:
        model = Assignment
        fields = ["id", "customer", "arm", "assigned_at"]


class AssignmentFilterSerializer(serializers.Serializer):
    arm = serializers.CharField(required=False, max_length=64, help_text="Arm name.")
    assigned_after = serializers.DateTimeField(required=False)
    assigned_before = serializers.DateTimeField(required=False)

    def filter(self, queryset):
        data = self.validated_data
        if "arm" in data:
            queryset = queryset.filter(arm__name=data["arm"])
        if "assigned_after" in data:
            queryset = queryset.filter(assigned_at__gte=data["assigned_after"])
        if "assigned_before" in data:
            queryset = queryset.filter(assigned_at__lt=data["assigned_before"])
        return queryset


class ExposureInSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=128, help_text="The customer's external_id.")
    exposed_at = serializers.DateTimeField(help_text="ISO 8601 with a UTC offset.")
    idempotency_key = serializers.CharField(max_length=128,
                                            help_text="Unique per assignment, e.g. the send id.")


class ExposureBulkInSerializer(serializers.Serializer):
    exposures = BulkRowsField(child=ExposureInSerializer())


class ExposureSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="assignment.customer.external_id")
    arm = serializers.CharField(source="assignment.arm.name")
    idempotency_key = serializers.CharField(
        help_text="The key as stored: its keyed pseudonym (HMAC-SHA256), never the key sent.")

    class Meta:
        model = Exposure
        fields = ["id", "customer", "arm", "exposed_at", "idempotency_key"]


class ExposureFilterSerializer(serializers.Serializer):
    exposed_after = serializers.DateTimeField(required=False)
    exposed_before = serializers.DateTimeField(required=False)

    def filter(self, queryset):
        data = self.validated_data
        if "exposed_after" in data:
            queryset = queryset.filter(exposed_at__gte=data["exposed_after"])
        if "exposed_before" in data:
            queryset = queryset.filter(exposed_at__lt=data["exposed_before"])
        return queryset


class RecordResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Skipped: their idempotency key was stored.")


class ConversionInSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=128, help_text="An assigned customer's external_id.")
    kind = serializers.ChoiceField(choices=Event.Kind.choices, required=False,
                                   help_text="Defaults to the primary metric's event kind.")
    occurred_at = serializers.DateTimeField()
    value = serializers.FloatField(required=False, default=0.0, min_value=-AMOUNT_MAX,
                                   max_value=AMOUNT_MAX)
    properties = serializers.DictField(required=False)
    idempotency_key = serializers.CharField(max_length=128, required=False, allow_null=True)


class ConversionBulkInSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=64, default="api")
    conversions = BulkRowsField(child=ConversionInSerializer())


class MetricSumsSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    sum_y = serializers.FloatField(help_text="Σ outcome over the attribution window.")
    sum_y2 = serializers.FloatField()
    sum_x = serializers.FloatField(help_text="Σ same aggregate in the window before assignment.")
    sum_x2 = serializers.FloatField()
    sum_xy = serializers.FloatField()


class ArmOutcomeSerializer(serializers.Serializer):
    arm = serializers.CharField()
    is_control = serializers.BooleanField()
    n = serializers.IntegerField(help_text="Assigned customers.")
    metrics = serializers.DictField(child=MetricSumsSerializer(), help_text="By metric name.")


class OutcomesSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    arms = ArmOutcomeSerializer(many=True)


# --- Analysis results --------------------------------------------------------

class _DecisionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["ship", "stop", "keep_running"])
    arm = serializers.CharField(allow_null=True, help_text="The arm to ship, if any.")
    reasons = serializers.ListField(child=serializers.CharField())


class AnalysisPayloadSerializer(serializers.Serializer):
    """Documents experiments.stats.analysis.ExperimentAnalysis.to_dict(), stored as is."""

    inference = serializers.ChoiceField(choices=["sequential", "fixed_horizon"])
    alpha = serializers.FloatField()
    sample_sizes = serializers.DictField(child=serializers.IntegerField(),
                                         help_text="Assigned customers per arm.")
    srm = serializers.DictField(help_text=(
        "Sample-ratio check over the arms: observed, expected, statistic, df, p_value, "
        "threshold, mismatch."))
    metrics = serializers.ListField(child=serializers.DictField(), help_text=(
        "Per metric: metric, kind, role, increase_is_good, arms (n, mean, variance, "
        "standard_error, adjusted_mean, ...) and comparisons against control (unadjusted, "
        "cuped, sequential and bayesian estimates, power, p_value_adjusted, significant, "
        "direction)."))
    decision = _DecisionSerializer()
    segments = serializers.ListField(child=serializers.DictField(), help_text=(
        "The same per-metric results within each breakdown segment or attribute value, "
        "with its own srm; `suppressed` true (with `suppressed_reason`, figures left out) "
        "where a cell holds fewer than PRIVACY_MIN_CELL customers."))


@extend_schema_field(AnalysisPayloadSerializer)
class AnalysisPayloadField(serializers.JSONField):
    """The stored payload (documented by AnalysisPayloadSerializer), small cells suppressed.

    Breakdowns over fewer than PRIVACY_MIN_CELL customers keep only their
    label, ``suppressed`` and ``suppressed_reason`` (experiments.results).
    """

    def to_representation(self, value):
        return super().to_representation(analysis_payload_public(value))


class AnalysisResultSummarySerializer(serializers.ModelSerializer):
    decision = serializers.CharField(help_text="ship, stop or keep_running.")
    decision_reasons = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = AnalysisResult
        fields = ["id", "created_at", "customers", "decision", "decision_reasons",
                  "srm_p_value"]


class AnalysisResultSerializer(AnalysisResultSummarySerializer):
    experiment = serializers.CharField(source="experiment.key")
    task_run = serializers.IntegerField(source="task_run_id", allow_null=True,
                                        help_text="The task that computed it, if any.")
    payload = AnalysisPayloadField()

    class Meta(AnalysisResultSummarySerializer.Meta):
        fields = ["id", "experiment", "created_at", "task_run", "customers", "decision",
                  "decision_reasons", "srm_p_value", "payload"]


