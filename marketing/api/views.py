"""Customers, attributes, events, segments, campaigns, erasure and export.

Each view: check the shape with a serializer, call a service, serialise.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api.backpressure import task_queue_limited
from core.api.errors import RowsRejected
from core.api.permissions import RUN_TASKS
from core.api.schema import bulk_error_responses, error_responses
from core.api.serializers import TaskRunSerializer
from core.api.views import TASK_QUEUED_EXAMPLE, ListView, queued, requester
from jobs.requests import segment_size_request
from marketing.api import serializers as s
from marketing.crm_ids import customer_by_crm_id
from marketing.models import Campaign, Customer, CustomerAttribute, Event, Segment
from marketing.privacy import customer_data_export, customer_erase
from marketing.services import campaign_create, customers_upsert_bulk, events_record, segment_create

CUSTOMER_EXAMPLE = {"external_id": "crm-1001", "attributes": {"age": 34, "channel": "web"},
                    "marketing_consent": True}
CUSTOMER_OUT_EXAMPLE = {**CUSTOMER_EXAMPLE, "created_at": "2026-06-01T12:00:00Z",
                        "updated_at": "2026-06-02T08:30:00Z", "erased_at": None}
EXTERNAL_ID = OpenApiParameter(
    "external_id", str, OpenApiParameter.PATH, description="The CRM's customer id.",
    examples=[OpenApiExample("Customer", value="crm-1001")])
SEGMENT_KEY = OpenApiParameter("key", str, OpenApiParameter.PATH, description="The segment's key.",
                               examples=[OpenApiExample("Segment", value="frequent_web")])
CAMPAIGN_KEY = OpenApiParameter(
    "key", str, OpenApiParameter.PATH, description="The campaign's key.",
    examples=[OpenApiExample("Campaign", value="summer_email")])


# --- Customers -------------------------------------------------------------

class CustomerAttributeListView(ListView):
    permission_model = CustomerAttribute
    serializer_class = s.CustomerAttributeSerializer

    @extend_schema(
        tags=["customers"], summary="Declared customer attributes",
        description="The attributes a customer may carry, with their kind and allowed values.",
        responses={200: s.CustomerAttributeSerializer(many=True), **error_responses()},
        examples=[OpenApiExample("Attribute", response_only=True, value={
            "key": "channel", "label": "Preferred channel", "kind": "categorical",
            "choices": ["web", "phone", "store"], "required": False, "is_personal": False})],
    )
    def get(self, request):
        return self.list(request, CustomerAttribute.objects.all())


class CustomerListView(ListView):
    permission_model = Customer
    serializer_class = s.CustomerSerializer
    filter_class = s.CustomerFilterSerializer

    @extend_schema(
        tags=["customers"], summary="List customers",
        parameters=[s.CustomerFilterSerializer],
        responses={200: s.CustomerSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Customer", value=CUSTOMER_OUT_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return self.list(request, Customer.objects.all())

    @extend_schema(
        tags=["customers"], summary="Create or update one customer by external_id",
        description="Attributes merge into the stored ones. 201 when created, 200 when updated.",
        request=s.CustomerInSerializer,
        responses={200: s.CustomerSerializer, 201: s.CustomerSerializer,
                   **error_responses(400, 409)},
        examples=[OpenApiExample("Upsert", value=CUSTOMER_EXAMPLE, request_only=True),
                  OpenApiExample("Stored", value=CUSTOMER_OUT_EXAMPLE, response_only=True,
                                 status_codes=[200, 201])],
    )
    def post(self, request):
        row = s.CustomerInSerializer(data=request.data)
        row.is_valid(raise_exception=True)
        data = {k: v for k, v in row.validated_data.items() if v is not None}
        result = customers_upsert_bulk([data])
        if result.rejected:
            raise ValidationError(result.rejected[0]["errors"])
        customer = Customer.objects.get(external_id=data["external_id"])
        return Response(s.CustomerSerializer(customer).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class CustomerBulkView(GenericAPIView):
    permission_model = Customer
    throttle_scope = "bulk"
    serializer_class = s.CustomerBulkInSerializer

    @extend_schema(
        tags=["customers"], summary="Create or update up to 10,000 customers",
        description="All or nothing: if any row is invalid, nothing is written and every "
                    "rejected row is listed with its index.",
        request=s.CustomerBulkInSerializer,
        responses={200: s.CustomerBulkResultSerializer, **bulk_error_responses(409)},
        examples=[
            OpenApiExample("Two customers", request_only=True, value={"customers": [
                CUSTOMER_EXAMPLE, {"external_id": "crm-1002", "attributes": {"vip": True}}]}),
            OpenApiExample("Result", response_only=True,
                           value={"created": 1, "updated": 1, "unchanged": 0}),
        ],
    )
    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        rows = body.validated_data["customers"]
        result = customers_upsert_bulk(rows)
        if result.rejected:
            raise RowsRejected(result.rejected, total=len(rows))
        return Response(s.CustomerBulkResultSerializer(result).data)


def customer_or_404(external_id: str) -> Customer:
    """The customer the CRM calls ``external_id``, erased ones included (marketing.crm_ids)."""
    customer = customer_by_crm_id(external_id)
    if customer is None:
        raise Http404("No customer with this external_id.")
    return customer


class CustomerDetailView(GenericAPIView):
    permission_model = Customer
    serializer_class = s.CustomerSerializer

    @extend_schema(
        tags=["customers"], summary="One customer", parameters=[EXTERNAL_ID],
        responses={200: s.CustomerSerializer, **error_responses(404)},
        examples=[OpenApiExample("Customer", value=CUSTOMER_OUT_EXAMPLE, response_only=True)],
    )
    def get(self, request, external_id: str):
        return Response(self.get_serializer(customer_or_404(external_id)).data)


class CustomerEraseView(GenericAPIView):
    permission_model = Customer
    personal_data_permission = "erase_personal_data"
    serializer_class = s.ErasureSerializer

    @extend_schema(
        tags=["privacy"], summary="Erase a customer's personal data",
        description="Needs an API key with privacy scope (or the erase_personal_data "
                    "permission). Replaces the CRM id with a pseudonym, removes personal "
                    "attributes, event properties, scores and targeting entries, sets consent "
                    "to false for good, keeps the row, assignments and event values so "
                    "experiment counts do not change, and records the erasure (audit log). "
                    "Repeating it is safe; the CRM id still finds the erased customer.",
        parameters=[EXTERNAL_ID], request=None,
        responses={200: s.ErasureSerializer, **error_responses(404)},
        examples=[OpenApiExample("Erasure", response_only=True, value={
            "customer": "erased:3f9a0c5e1b7d42a8c6e0f1d2b3a49587", "erased_at": "2026-06-03T09:00:00Z",
            "requested_by": "api-key:crm-privacy", "attributes_removed": ["email"],
            "events_scrubbed": 12})],
    )
    def post(self, request, external_id: str):
        record = customer_erase(customer=customer_or_404(external_id), request=request,
                                requested_by=requester(request))
        return Response(self.get_serializer(record).data)


class CustomerExportView(GenericAPIView):
    permission_model = Customer
    personal_data_permission = "export_personal_data"
    serializer_class = s.CustomerExportSerializer

    @extend_schema(
        tags=["privacy"], summary="Everything stored about a customer",
        description="Needs an API key with privacy scope (or the export_personal_data "
                    "permission); every export is audit-logged under the customer's pseudonym.",
        parameters=[EXTERNAL_ID],
        responses={200: s.CustomerExportSerializer, **error_responses(404)},
        examples=[OpenApiExample("Export", response_only=True, value={
            "customer": CUSTOMER_OUT_EXAMPLE,
            "events": [{"kind": "purchase", "occurred_at": "2026-06-02T10:00:00+00:00",
                        "value": 59.9, "properties": {"sku": "A-12"}, "source": "shop",
                        "idempotency_key": "order-77", "received_at": "2026-06-02T10:00:03+00:00"}],
            "assignments": [{"experiment": "spring_email", "arm": "email",
                             "assigned_at": "2026-06-01T12:00:00+00:00"}],
            "exposures": [{"experiment": "spring_email", "exposed_at": "2026-06-01T13:00:00+00:00",
                           "idempotency_key": "send-1"}],
            "erasures": [],
            "scores": [{"model_version": 7, "campaign": "spring", "kind": "uplift",
                        "uplift": 0.042, "best_arm": "email",
                        "uplift_by_arm": {"email": 0.042, "email_discount": 0.031},
                        "response": 0.08, "scored_at": "2026-06-20T02:00:00+00:00"}],
            "targeting_entries": [{"targeting_list": 3, "campaign": "spring",
                                   "created_at": "2026-06-20T03:00:00+00:00", "rank": 18,
                                   "arm": "email", "uplift": 0.042,
                                   "expected_profit": 1.74}]})],
    )
    def get(self, request, external_id: str):
        return Response(customer_data_export(customer=customer_or_404(external_id),
                                             request=request))


# --- Events ----------------------------------------------------------------

EVENT_EXAMPLE = {"customer": "crm-1001", "kind": "purchase",
                 "occurred_at": "2026-06-02T10:00:00Z", "value": 59.9,
                 "properties": {"sku": "A-12"}, "idempotency_key": "order-77"}


class EventListView(ListView):
    permission_model = Event
    serializer_class = s.EventSerializer
    filter_class = s.EventFilterSerializer

    @extend_schema(
        tags=["events"], summary="List events", parameters=[s.EventFilterSerializer],
        responses={200: s.EventSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Event", response_only=True, value={
            "id": 81, **EVENT_EXAMPLE, "source": "shop",
            "received_at": "2026-06-02T10:00:03Z"})],
    )
    def get(self, request):
        return self.list(request, Event.objects.select_related("customer"))


class EventBulkView(GenericAPIView):
    permission_model = Event
    throttle_scope = "bulk"
    serializer_class = s.EventBulkInSerializer

    @extend_schema(
        tags=["events"], summary="Record up to 10,000 events",
        description="Idempotent per (source, idempotency_key): a key already stored is "
                    "skipped and counted in `duplicates`. All or nothing: if any row is "
                    "invalid, nothing is written and every rejected row is listed.",
        request=s.EventBulkInSerializer,
        responses={200: s.EventBulkResultSerializer, **bulk_error_responses(409)},
        examples=[
            OpenApiExample("Purchases", request_only=True,
                           value={"source": "shop", "events": [EVENT_EXAMPLE]}),
            OpenApiExample("Result", response_only=True, value={"created": 1, "duplicates": 0}),
        ],
    )
    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        rows = body.validated_data["events"]
        result = events_record(rows, source=body.validated_data["source"])
        if result.rejected:
            raise RowsRejected(result.rejected, total=len(rows))
        return Response({"created": result.created, "duplicates": result.duplicates})


# --- Segments --------------------------------------------------------------

SEGMENT_EXAMPLE = {"key": "frequent_web", "name": "Frequent web buyers", "description": "",
                   "rule": {"all": [{"attr": "channel", "op": "eq", "value": "web"},
                                    {"metric": "purchases_90d", "op": "gte", "value": 2}]}}
SEGMENT_OUT_EXAMPLE = {**SEGMENT_EXAMPLE, "member_count": 1840,
                       "counted_at": "2026-06-02T08:00:00Z", "created_at": "2026-06-01T09:00:00Z"}
SEGMENT_RULE_DOC = (
    "Rule grammar: `{\"all\": [rule, ...]}`, `{\"any\": [...]}`, `{\"not\": rule}`, "
    "`{\"attr\": KEY, \"op\": OP, \"value\": V}`, `{\"metric\": NAME, \"op\": OP, \"value\": N}` "
    "with NAME like `purchases_90d`, `revenue_30d` or `days_since_purchase_365d` "
    "(marketing.behaviour), and `{\"consent\": true}`. "
    "OP: eq, ne, in, not_in, gt, gte, lt, lte, exists.")


class SegmentListView(ListView):
    permission_model = Segment
    write_permission = "add"
    serializer_class = s.SegmentSerializer

    @extend_schema(
        tags=["segments"], summary="List segments",
        responses={200: s.SegmentSerializer(many=True), **error_responses(404)},
        examples=[OpenApiExample("Segment", value=SEGMENT_OUT_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return self.list(request, Segment.objects.all())

    @extend_schema(
        tags=["segments"], summary="Create a segment", description=SEGMENT_RULE_DOC,
        request=s.SegmentInSerializer,
        responses={201: s.SegmentSerializer, **error_responses(400, 409)},
        examples=[OpenApiExample("Segment", value=SEGMENT_EXAMPLE, request_only=True),
                  OpenApiExample("Created", value={**SEGMENT_OUT_EXAMPLE, "member_count": None,
                                                   "counted_at": None}, response_only=True)],
    )
    def post(self, request):
        body = s.SegmentInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        segment = segment_create(**body.validated_data)
        return Response(s.SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailView(GenericAPIView):
    permission_model = Segment
    serializer_class = s.SegmentSerializer

    @extend_schema(
        tags=["segments"], summary="One segment", parameters=[SEGMENT_KEY],
        responses={200: s.SegmentSerializer, **error_responses(404)},
        examples=[OpenApiExample("Segment", value=SEGMENT_OUT_EXAMPLE, response_only=True)],
    )
    def get(self, request, key: str):
        return Response(self.get_serializer(get_object_or_404(Segment, key=key)).data)



class SegmentCountView(GenericAPIView):
    permission_model = Segment
    write_permission = RUN_TASKS
    serializer_class = TaskRunSerializer

    @extend_schema(
        tags=["segments"], summary="Count the segment's members in the background",
        description="Returns the queued task; poll GET /api/v1/tasks/{id}/ for the count.",
        parameters=[SEGMENT_KEY], request=None,
        responses={202: TaskRunSerializer, **error_responses(404)},
        examples=[OpenApiExample("Queued", value=TASK_QUEUED_EXAMPLE, response_only=True,
                                 status_codes=[202])],
    )
    @transaction.atomic
    def post(self, request, key: str):
        segment = get_object_or_404(Segment, key=key)
        run = task_queue_limited(request, lambda: segment_size_request(segment=segment))
        return queued(run, request)


# --- Campaigns -------------------------------------------------------------

CAMPAIGN_EXAMPLE = {"key": "summer_email", "name": "Summer e-mail", "channel": "email",
                    "cost_per_contact": "0.0500", "value_per_conversion": "40.00",
                    "budget": "5000.00"}
CAMPAIGN_OUT_EXAMPLE = {**CAMPAIGN_EXAMPLE, "status": "draft",
                        "created_at": "2026-06-01T09:00:00Z"}


class CampaignListView(ListView):
    permission_model = Campaign
    write_permission = "add"
    serializer_class = s.CampaignSerializer
    filter_class = s.CampaignFilterSerializer

    @extend_schema(
        tags=["campaigns"], summary="List campaigns", parameters=[s.CampaignFilterSerializer],
        responses={200: s.CampaignSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Campaign", value=CAMPAIGN_OUT_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return self.list(request, Campaign.objects.all())

    @extend_schema(
        tags=["campaigns"], summary="Create a campaign", request=s.CampaignInSerializer,
        responses={201: s.CampaignSerializer, **error_responses(400, 409)},
        examples=[OpenApiExample("Campaign", value=CAMPAIGN_EXAMPLE, request_only=True),
                  OpenApiExample("Created", value=CAMPAIGN_OUT_EXAMPLE, response_only=True,
                                 status_codes=[201])],
    )
    def post(self, request):
        body = s.CampaignInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        campaign = campaign_create(**body.validated_data, owner=user)
        return Response(s.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(GenericAPIView):
    permission_model = Campaign
    serializer_class = s.CampaignSerializer

    @extend_schema(
        tags=["campaigns"], summary="One campaign", parameters=[CAMPAIGN_KEY],
        responses={200: s.CampaignSerializer, **error_responses(404)},
        examples=[OpenApiExample("Campaign", value=CAMPAIGN_OUT_EXAMPLE, response_only=True)],
    )
    def get(self, request, key: str):
        return Response(self.get_serializer(get_object_or_404(Campaign, key=key)).data)


def segment_or_invalid(key: str | None, field: str = "segment") -> Segment | None:
    """The segment with this key; None for no key; a 400 on ``field`` for an unknown one."""
    if key is None:
        return None
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        raise ValidationError({field: ["no segment with this key"]})
    return segment
