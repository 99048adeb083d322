"""Input and output shapes of the marketing endpoints.

Bulk inputs document each row with a serializer but leave row checks to the
service (core.api.serializers.BulkRowsField): the service checks all rows in one pass, reports
every bad one with its index, and is the only place the rules live.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from core.api.serializers import BulkRowsField
from core.bounds import AMOUNT_MAX, COUNT_MAX
from marketing.models import Campaign, Customer, CustomerAttribute, ErasureRecord, Event, Segment
from marketing.segment_rules import segment_count_public
from marketing.services import campaign_harm_clean


class CustomerAttributeSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerAttribute
        fields = ["key", "label", "kind", "choices", "required", "is_personal"]


class CustomerInSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128, trim_whitespace=False,
                                        help_text="The CRM's customer id.")
    attributes = serializers.DictField(
        required=False, help_text="Values of declared attributes (GET /customer-attributes/); "
        "merged into the stored ones. null leaves a value as it is.")
    marketing_consent = serializers.BooleanField(required=False, allow_null=True, default=None)
    marketing_consent_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="When the customer gave or withdrew consent (ISO 8601 with offset); default: "
                  "when the request arrives. A consent older than the stored one is not applied.")


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["external_id", "attributes", "marketing_consent", "created_at", "updated_at",
                  "erased_at"]


class CustomerBulkInSerializer(serializers.Serializer):
    customers = BulkRowsField(child=CustomerInSerializer())


class CustomerBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField(help_text="Rows that matched what is stored.")


class CustomerFilterSerializer(serializers.Serializer):
    updated_after = serializers.DateTimeField(required=False, help_text="updated_at >= this")
    updated_before = serializers.DateTimeField(required=False, help_text="updated_at < this")
    erased = serializers.BooleanField(required=False, allow_null=True, default=None)

    def filter(self, queryset):
        data = self.validated_data
        if "updated_after" in data:
            queryset = queryset.filter(updated_at__gte=data["updated_after"])
        if "updated_before" in data:
            queryset = queryset.filter(updated_at__lt=data["updated_before"])
        if data.get("erased") is not None:
            queryset = queryset.filter(erased_at__isnull=not data["erased"])
        return queryset


class ErasureSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")

    class Meta:
        model = ErasureRecord
        fields = ["customer", "erased_at", "requested_by", "attributes_removed", "events_scrubbed"]


class _ExportCustomer(serializers.Serializer):
    external_id = serializers.CharField()
    attributes = serializers.DictField()
    marketing_consent = serializers.BooleanField()
    consent_changed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    erased_at = serializers.DateTimeField(allow_null=True)


class _ExportEvent(serializers.Serializer):
    kind = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    value = serializers.FloatField()
    properties = serializers.DictField()
    source = serializers.CharField()
    idempotency_key = serializers.CharField(allow_null=True)
    received_at = serializers.DateTimeField()


class _ExportAssignment(serializers.Serializer):
    experiment = serializers.CharField()
    arm = serializers.CharField()
    assigned_at = serializers.DateTimeField()


class _ExportExposure(serializers.Serializer):
    experiment = serializers.CharField()
    exposed_at = serializers.DateTimeField()
    idempotency_key = serializers.CharField()


class _ExportErasure(serializers.Serializer):
    erased_at = serializers.DateTimeField()
    requested_by = serializers.CharField()
    attributes_removed = serializers.ListField(child=serializers.CharField())
    events_scrubbed = serializers.IntegerField()


class _ExportScore(serializers.Serializer):
    model_version = serializers.IntegerField()
    campaign = serializers.CharField()
    kind = serializers.CharField()
    uplift = serializers.FloatField(allow_null=True)
    best_arm = serializers.CharField(allow_blank=True)
    uplift_by_arm = serializers.DictField(child=serializers.FloatField())
    response = serializers.FloatField(allow_null=True)
    scored_at = serializers.DateTimeField()


class _ExportTargetingEntry(serializers.Serializer):
    targeting_list = serializers.IntegerField()
    campaign = serializers.CharField()
    created_at = serializers.DateTimeField()
    rank = serializers.IntegerField()
    arm = serializers.CharField()
    uplift = serializers.FloatField()
    expected_profit = serializers.FloatField()


class _ExportAttributeVersion(serializers.Serializer):
    attributes = serializers.DictField()
    marketing_consent = serializers.BooleanField()
    valid_from = serializers.DateTimeField()
    valid_to = serializers.DateTimeField(allow_null=True)


class _ExportConsentChange(serializers.Serializer):
    consent = serializers.BooleanField()
    decided_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    source = serializers.CharField(help_text="Who sent it: api-key:<name>, user:<name>, erasure")


class CustomerExportSerializer(serializers.Serializer):
    """Documents marketing.privacy.customer_data_export's result (already JSON-ready)."""

    customer = _ExportCustomer()
    attribute_history = _ExportAttributeVersion(many=True)
    consent_history = _ExportConsentChange(many=True)
    events = _ExportEvent(many=True)
    assignments = _ExportAssignment(many=True)
    exposures = _ExportExposure(many=True)
    erasures = _ExportErasure(many=True)
    scores = _ExportScore(many=True)
    targeting_entries = _ExportTargetingEntry(many=True)


class EventInSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=128, trim_whitespace=False,
                                     help_text="The customer's external_id.")
    kind = serializers.ChoiceField(choices=Event.Kind.choices)
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with a UTC offset.")
    value = serializers.FloatField(required=False, default=0.0, min_value=-AMOUNT_MAX,
                                   max_value=AMOUNT_MAX,
                                   help_text="Revenue for purchases; 0 otherwise.")
    properties = serializers.DictField(required=False, help_text="Free-form; wiped on erasure.")
    idempotency_key = serializers.CharField(
        max_length=128, required=False, allow_null=True,
        help_text="Unique per source: a retried delivery with the same key is skipped.")


class EventBulkInSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=64, default="api",
                                   help_text="Sending system; idempotency keys are per source.")
    events = BulkRowsField(child=EventInSerializer())


class EventBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Events skipped: their key was stored.")


class EventSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    idempotency_key = serializers.CharField(
        allow_null=True,
        help_text="The key as stored: its keyed pseudonym (HMAC-SHA256), never the key sent.")

    class Meta:
        model = Event
        fields = ["id", "customer", "kind", "occurred_at", "value", "properties", "source",
                  "idempotency_key", "received_at"]


class EventFilterSerializer(serializers.Serializer):
    customer = serializers.CharField(required=False, max_length=128, trim_whitespace=False,
                                     help_text="The customer's external_id.")
    kind = serializers.ChoiceField(choices=Event.Kind.choices, required=False)
    source = serializers.CharField(required=False, max_length=64)
    occurred_after = serializers.DateTimeField(required=False, help_text="occurred_at >= this")
    occurred_before = serializers.DateTimeField(required=False, help_text="occurred_at < this")

    def filter(self, queryset):
        data = self.validated_data
        if "customer" in data:
            queryset = queryset.filter(customer__external_id=data["customer"])
        if "kind" in data:
            queryset = queryset.filter(kind=data["kind"])
        if "source" in data:
            queryset = queryset.filter(source=data["source"])
        if "occurred_after" in data:
            queryset = queryset.filter(occurred_at__gte=data["occurred_after"])
        if "occurred_before" in data:
            queryset = queryset.filter(occurred_at__lt=data["occurred_before"])
        return queryset


class SegmentInSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    rule = serializers.JSONField(help_text="See the segment rule grammar in the API description.")


class SegmentSerializer(serializers.ModelSerializer):
    member_count = serializers.SerializerMethodField(
        help_text="Members at counted_at; null when not counted or when fewer than "
                  "PRIVACY_MIN_CELL; with PRIVACY_DP_EPSILON set, a differentially private "
                  "count (member_count_note says which, with epsilon).")
    member_count_note = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = ["key", "name", "description", "rule", "member_count", "member_count_note",
                  "counted_at", "created_at"]

    def get_member_count(self, segment) -> int | None:
        return segment_count_public(segment)[0]

    def get_member_count_note(self, segment) -> str:
        return segment_count_public(segment)[1]


class CampaignInSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=128)
    channel = serializers.ChoiceField(choices=Campaign.Channel.choices)
    cost_per_contact = serializers.DecimalField(max_digits=10, decimal_places=4, min_value=0)
    value_per_conversion = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    budget = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0,
                                      required=False, allow_null=True, default=None)
    harm_prices = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=AMOUNT_MAX), required=False,
        default=dict, help_text="Money one extra guardrail event costs, per event kind, e.g. "
                  '{"unsubscribe": 8.0}; targeting subtracts it from expected profit.')
    harm_caps = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=COUNT_MAX), required=False,
        default=dict, help_text="Most extra guardrail events a targeting list may be expected to cause, "
                  'per event kind, e.g. {"unsubscribe": 50}.')

    def validate_harm_prices(self, value):
        return _harm_or_invalid("harm_prices", value)

    def validate_harm_caps(self, value):
        return _harm_or_invalid("harm_caps", value)


def _harm_or_invalid(name: str, value):
    try:
        return campaign_harm_clean(name, value)
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.message_dict[name]) from None


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["key", "name", "channel", "status", "cost_per_contact", "value_per_conversion",
                  "budget", "harm_prices", "harm_caps", "created_at"]


class CampaignFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False)
    channel = serializers.ChoiceField(choices=Campaign.Channel.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)

    def filter(self, queryset):
        data = self.validated_data
        for name in ("status", "channel"):
            if name in data:
                queryset = queryset.filter(**{name: data[name]})
        if "created_after" in data:
            queryset = queryset.filter(created_at__gte=data["created_after"])
        if "created_before" in data:
            queryset = queryset.filter(created_at__lt=data["created_before"])
        return queryset
