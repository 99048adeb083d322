"""Model versions (train, score), customer scores and explanations, and targeting lists.

Each view: check the shape with a serializer, call a service, serialise.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api.backpressure import task_queue_limited
from core.api.pagination import IdCursorPagination, NewestFirstCursorPagination
from core.api.permissions import EXPORT_TARGETING_LIST, RUN_TASKS
from core.api.schema import error_responses
from core.api.serializers import TaskRunSerializer
from core.api.views import ListView, queued, queued_example
from core.audit import audit_record, audit_target
from experiments.api.views import EXPERIMENT_KEY, experiment_or_404
from experiments.models import Experiment
from jobs.requests import (
    customers_score_request,
    response_model_train_request,
    uplift_model_train_request,
)
from marketing.api.views import (
    CAMPAIGN_KEY,
    EXTERNAL_ID,
    customer_or_404,
    segment_or_invalid,
)
from marketing.models import Campaign
from modelling.api import serializers as s
from modelling.explanations import customer_explanation
from modelling.followup import (
    follow_up_plan,
    follow_up_plan_csv,
    targeting_follow_up_analyse,
    targeting_follow_up_create,
    targeting_follow_up_start,
)
from modelling.models import (
    CustomerScore,
    ModelVersion,
    TargetingFollowUp,
    TargetingList,
)
from modelling.targeting import targeting_entries, targeting_list_create, targeting_list_csv

# --- Model versions --------------------------------------------------------------

MODEL_VERSION_ID = OpenApiParameter(
    "id", int, OpenApiParameter.PATH, description="The model version's id.",
    examples=[OpenApiExample("Model version", value=7)])
MODEL_VERSION_SUMMARY_EXAMPLE = {
    "id": 7, "campaign": "summer_email", "experiment": "summer_email_ab", "kind": "uplift",
    "estimator": "tarnet", "target_metric": "purchase", "status": "ready",
    "selection_score": 0.3223, "is_champion": True, "rows_train": 6000,
    "rows_validation": 2000, "rows_test": 2000, "training_seconds": 41.7,
    "created_at": "2026-06-16T02:00:00Z"}
MODEL_VERSION_EXAMPLE = {
    **MODEL_VERSION_SUMMARY_EXAMPLE, "status_reason": "",
    "params": {"random_state": 0, "max_epochs": 50},
    "feature_spec": {"attributes": ["age", "channel"],
                     "kinds": ["purchase", "visit", "email_open", "email_click"],
                     "windows": [30, 90, 365], "sequence_length": 0},
    "metrics": {"arms": {"email": {"qini": 0.3223, "auuc": 0.8464, "uplift_at_30": 0.2844}},
                "mean": {"qini": 0.3223, "auuc": 0.8464, "uplift_at_30": 0.2844},
                "baselines": {"causalml_X": {"qini": 0.2511, "auuc": 0.7902,
                                             "uplift_at_30": 0.2210, "fit_seconds": 3.2}},
                "arm_names": ["control", "email"]},
    "curves": {"email": {"x": [0.0, 1000.0, 2000.0], "qini": [0.0, 61.0, 98.0]}},
    "explanations": {
        "method": "integrated_gradients", "n_rows": 2000, "unit": "conversions",
        "arm_names": ["email"],
        "labels": {"age": "age", "email_opens_365d": "e-mail opens in the last 365 days"},
        "drivers": {"method": "integrated_gradients", "n_rows": 2000,
                    "ranking": {"email": [["email_opens_365d", 0.0112], ["age", 0.0031]]},
                    "baseline_uplift": {"email": 0.0204}},
        "baseline": [0.0132, -0.0411, 1.0, 0.0],
        "rules": {"cost_per_contact": 0.05, "value_per_conversion": 40.0, "max_depth": 3,
                  "text": ["e-mail opens in the last 365 days <= 2 -> no contact (48% of "
                           "customers)",
                           "e-mail opens in the last 365 days > 2 -> email (52% of customers, "
                           "+0.031 conversions each, profit +1.2 each)"],
                  "rules": [{"conditions": [{"feature": "e-mail opens in the last 365 days",
                                             "op": "<=", "value": 2.0}],
                             "action": -1, "action_name": "no contact", "share": 0.48,
                             "mean_uplift": 0.0, "mean_profit": 0.0,
                             "text": "e-mail opens in the last 365 days <= 2 -> no contact "
                                     "(48% of customers)"}],
                  "fill": {"age": 41.0, "email_opens_365d": 3.0},
                  "value_share": {"predicted": {"model_per_customer": 0.71,
                                                "rules_per_customer": 0.62, "share": 0.873,
                                                "note": ""}}},
        "computed_at": "2026-06-16T02:00:41Z"},
    "artifact_sha256": "0642e48b8dacd24bc19cec6367c9058514d626f773503a5064b840403168216d",
    "task_run": 43}


class ModelVersionListView(ListView):
    permission_model = ModelVersion
    pagination_class = NewestFirstCursorPagination
    serializer_class = s.ModelVersionSummarySerializer
    filter_class = s.ModelVersionFilterSerializer

    @extend_schema(
        tags=["models"], summary="List trained model versions, newest first",
        parameters=[s.ModelVersionFilterSerializer],
        responses={200: s.ModelVersionSummarySerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Model version", value=MODEL_VERSION_SUMMARY_EXAMPLE,
                                 response_only=True)],
    )
    def get(self, request):
        return self.list(request, ModelVersion.objects.select_related("campaign", "experiment")
                         .defer("metrics", "curves", "feature_reference", "explanations"))


def model_version_or_404(id: int) -> ModelVersion:  # noqa: A002 - the path parameter's name
    return get_object_or_404(ModelVersion.objects.select_related("campaign", "experiment"),
                             pk=id)


class ModelVersionDetailView(GenericAPIView):
    permission_model = ModelVersion
    serializer_class = s.ModelVersionSerializer

    @extend_schema(
        tags=["models"], summary="One model version with its held-out quality and explanations",
        parameters=[MODEL_VERSION_ID],
        responses={200: s.ModelVersionSerializer, **error_responses(404)},
        examples=[OpenApiExample("Model version", value=MODEL_VERSION_EXAMPLE,
                                 response_only=True)],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        return Response(self.get_serializer(model_version_or_404(id)).data)


class ExperimentTrainView(GenericAPIView):
    permission_model = Experiment
    write_permission = RUN_TASKS
    serializer_class = s.UpliftTrainInSerializer

    @extend_schema(
        tags=["models"], summary="Train uplift models on the experiment in the background",
        description="One model version per estimator, evaluated on held-out customers; a "
                    "ready version that beats the campaign's champion on Qini becomes "
                    "champion. The task's result lists `model_version_ids`.",
        parameters=[EXPERIMENT_KEY], request=s.UpliftTrainInSerializer,
        responses={202: TaskRunSerializer, **error_responses(400, 404)},
        examples=[
            OpenApiExample("Request", request_only=True, value={
                "estimators": ["tarnet"], "baselines": ["X"], "metric": "purchase",
                "estimator_params": {"tarnet": {"max_epochs": 50}}, "random_state": 0}),
            queued_example("uplift_model_train", {
                "experiment_id": 12, "estimators": ["tarnet"], "baselines": ["X"],
                "metric": "purchase", "estimator_params": {"tarnet": {"max_epochs": 50}},
                "random_state": 0}),
        ],
    )
    @transaction.atomic
    def post(self, request, key: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = experiment_or_404(key)
        run = task_queue_limited(request, lambda: uplift_model_train_request(
            experiment=experiment, **body.validated_data))
        return queued(run, request)


class CampaignTrainResponseView(GenericAPIView):
    permission_model = Campaign
    write_permission = RUN_TASKS
    serializer_class = s.ResponseTrainInSerializer

    @extend_schema(
        tags=["models"], summary="Train a response (propensity) model in the background",
        description="Predicts whether a customer will have the event within the window; needs "
                    "no experiment. The task's result names the `model_version_id`.",
        parameters=[CAMPAIGN_KEY], request=s.ResponseTrainInSerializer,
        responses={202: TaskRunSerializer, **error_responses(400, 404)},
        examples=[
            OpenApiExample("Request", request_only=True,
                           value={"event_kind": "purchase", "window_days": 30,
                                  "model_params": {}}),
            queued_example("response_model_train", {
                "campaign_id": 4, "event_kind": "purchase", "window_days": 30,
                "model_params": {}}),
        ],
    )
    @transaction.atomic
    def post(self, request, key: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        campaign = get_object_or_404(Campaign, key=key)
        run = task_queue_limited(request, lambda: response_model_train_request(
            campaign=campaign, **body.validated_data))
        return queued(run, request)


class ModelVersionScoreView(GenericAPIView):
    permission_model = ModelVersion
    write_permission = RUN_TASKS
    serializer_class = s.ScoreInSerializer

    @extend_schema(
        tags=["models"], summary="Score every customer (or a segment's) in the background",
        description="Replaces this version's scores of the customers scored; the version must "
                    "be ready. Read them with GET .../scores/.",
        parameters=[MODEL_VERSION_ID], request=s.ScoreInSerializer,
        responses={202: TaskRunSerializer, **error_responses(400, 404)},
        examples=[
            OpenApiExample("Request", request_only=True, value={"segment": "frequent_web"}),
            queued_example("customers_score", {
                "model_version_id": 7, "segment_id": 3, "chunk_size": 50000, "chunks": 1,
                "cutoff": "2026-06-16T03:00:00+00:00"}),
        ],
    )
    @transaction.atomic
    def post(self, request, id: int):  # noqa: A002 - the path parameter's name
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = model_version_or_404(id)
        segment = segment_or_invalid(body.validated_data["segment"])
        run = task_queue_limited(request, lambda: customers_score_request(
            model_version=version, segment=segment))
        return queued(run, request)


# --- Customer scores ---------------------------------------------------------------

SCORE_EXAMPLE = {"customer": "crm-1001", "uplift": 0.0812, "best_arm": "email",
                 "uplift_by_arm": {"email": 0.0812}, "response": 0.0681,
                 "scored_at": "2026-06-16T03:00:00Z"}


class CustomerScoreListView(ListView):
    permission_model = CustomerScore
    serializer_class = s.CustomerScoreSerializer
    filter_class = s.CustomerScoreFilterSerializer

    @extend_schema(
        tags=["scores"], summary="The model version's customer scores",
        parameters=[MODEL_VERSION_ID, s.CustomerScoreFilterSerializer],
        responses={200: s.CustomerScoreSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Score", value=SCORE_EXAMPLE, response_only=True)],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        version = model_version_or_404(id)
        return self.list(request, CustomerScore.objects.filter(model_version=version)
                         .select_related("customer"))


class CustomerScoresView(ListView):
    permission_model = CustomerScore
    pagination_class = NewestFirstCursorPagination
    serializer_class = s.CustomerModelScoreSerializer

    @extend_schema(
        tags=["scores"], summary="A customer's scores, one per model version, newest first",
        description="Each model version keeps one score per customer: the latest scoring "
                    "run's.",
        parameters=[EXTERNAL_ID],
        responses={200: s.CustomerModelScoreSerializer(many=True), **error_responses(404)},
        examples=[OpenApiExample("Score", response_only=True, value={
            "model_version": 7, "kind": "uplift", "campaign": "summer_email",
            "is_champion": True, **{k: v for k, v in SCORE_EXAMPLE.items() if k != "customer"}})],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        return self.list(request, CustomerScore.objects.of_customer(customer)
                         .select_related("customer", "model_version__campaign"))


EXPLANATION_EXAMPLE = {
    "customer": "crm-1001", "model_version": 7, "campaign": "summer_email",
    "as_of": "2026-06-16T09:30:00Z", "unit": "conversions", "cost_per_contact": 0.05,
    "value_per_conversion": 40.0, "chosen_arm": "email",
    "arms": [{"arm": "email", "uplift": 0.0812, "expected_profit": 3.198,
              "baseline_uplift": 0.0204, "other": 0.0013, "features": [
                  {"feature": "email_opens_365d", "label": "e-mail opens in the last 365 days",
                   "value": 9.0, "contribution": 0.0421},
                  {"feature": "age", "label": "age", "value": 34.0, "contribution": 0.0174}]}],
    "rule": {"text": "e-mail opens in the last 365 days > 2 -> email (52% of customers, "
                     "+0.031 conversions each, profit +1.2 each)",
             "action": "email",
             "conditions": [{"feature": "e-mail opens in the last 365 days", "op": ">",
                             "value": 2.0}]},
    "score": {"best_arm": "email", "uplift_by_arm": {"email": 0.0812},
              "scored_at": "2026-06-16T03:00:00Z", "consistent": True, "note": ""},
    "notes": []}


class CustomerExplanationView(GenericAPIView):
    permission_model = CustomerScore
    serializer_class = s.CustomerExplanationSerializer

    @extend_schema(
        tags=["scores"], summary="Why the model gives the customer the arm it does",
        description="From the customer's features as of now: the arm with the best expected "
                    "profit at the campaign's costs (or no contact), each arm's predicted "
                    "uplift and profit, the features pushing the uplift up or down, the "
                    "stored targeting rule that covers the customer, and their stored score "
                    "beside it (a stale score is named in `notes`). The model is the given "
                    "version or the campaign's champion uplift model (400 naming the field "
                    "when there is none). Erased customers are not explained (404).",
        parameters=[EXTERNAL_ID, s.CustomerExplanationQuerySerializer],
        responses={200: s.CustomerExplanationSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample("Explanation", value=EXPLANATION_EXAMPLE, response_only=True)],
    )
    def get(self, request, external_id: str):
        query = s.CustomerExplanationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = customer_or_404(external_id)
        if customer.erased_at is not None:
            raise Http404("erased customers are not explained")
        version = campaign = None
        if query.validated_data["model_version"] is not None:
            version = (ModelVersion.objects.select_related("campaign")
                       .filter(pk=query.validated_data["model_version"]).first())
            if version is None:
                raise ValidationError({"model_version": ["no model version with this id"]})
        elif query.validated_data["campaign"] is not None:
            campaign = Campaign.objects.filter(key=query.validated_data["campaign"]).first()
            if campaign is None:
                raise ValidationError({"campaign": ["no campaign with this key"]})
        answer = customer_explanation(customer=customer, model_version=version,
                                      campaign=campaign)
        return Response(self.get_serializer(answer).data)


# --- Targeting lists ------------------------------------------------------------------

TARGET_LIST_ID = OpenApiParameter(
    "id", int, OpenApiParameter.PATH, description="The targeting list's id.",
    examples=[OpenApiExample("Targeting list", value=3)])
TARGET_LIST_IN_EXAMPLE = {"model_version": 7, "budget": 1000.0, "max_contacts": 5000,
                          "segment": "frequent_web", "cost_per_contact": 0.05,
                          "value_per_conversion": 40.0}
TARGET_LIST_SUMMARY_EXAMPLE = {
    "id": 3, "campaign": "summer_email", "model_version": 7, "segment": "frequent_web",
    "parameters": {"cost_per_contact": 0.05, "value_per_conversion": 40.0, "budget": 1000.0,
                   "max_contacts": 5000, "eligible": 1840},
    "size": 1210, "total_cost": 60.5, "expected_profit": 1530.25,
    "expected_conversions": 39.77, "contacts_by_arm": {"email": 1210},
    "guardrail_harm": {"unsubscribes": 3.1}, "digest": "9f2c" + "0" * 60,
    "created_at": "2026-06-16T04:00:00Z"}
TARGET_LIST_EXAMPLE = {**TARGET_LIST_SUMMARY_EXAMPLE,
                       "profit_curve": {"contacts": [0, 605, 1210],
                                        "profit": [0.0, 1180.4, 1530.25]},
                       "evaluation": {"available": True, "method": "dr", "rows": 368,
                                      "policies": {"uplift_policy": {
                                          "contacts": 242, "profit": {
                                              "value": 270.1, "se": 95.0, "low": 83.9,
                                              "high": 456.3}}}}}
CSV_EXAMPLE = ("rank,customer_external_id,arm,predicted_uplift,expected_profit,uplift_email\r\n"
               "1,crm-1001,email,0.081200,3.1980,0.081200\r\n"
               "2,crm-2417,email,0.064310,2.5224,0.064310\r\n")


class RankCursorPagination(IdCursorPagination):
    ordering = "rank"


def _audit_export(request, obj, kind: str) -> None:
    """An export of customer ids: once per CSV, once per paging run (its first page)."""
    if kind == "csv" or not request.query_params.get("cursor"):
        audit_record("export", audit_target(obj), request=request,
                     detail={"format": kind, "via": "api"})


def targeting_list_or_404(id: int) -> TargetingList:  # noqa: A002 - the path parameter's name
    return get_object_or_404(TargetingList.objects.select_related("campaign", "segment"), pk=id)


class CampaignTargetingListView(ListView):
    permission_model = TargetingList
    write_permission = RUN_TASKS  # building a list, as the admin's Create a targeting list
    pagination_class = NewestFirstCursorPagination
    serializer_class = s.TargetingListSummarySerializer

    @extend_schema(
        tags=["targeting"], summary="The campaign's targeting lists, newest first",
        parameters=[CAMPAIGN_KEY],
        responses={200: s.TargetingListSummarySerializer(many=True), **error_responses(404)},
        examples=[OpenApiExample("Targeting list", value=TARGET_LIST_SUMMARY_EXAMPLE,
                                 response_only=True)],
    )
    def get(self, request, key: str):
        campaign = get_object_or_404(Campaign, key=key)
        return self.list(request, TargetingList.objects.filter(campaign=campaign)
                         .select_related("campaign", "segment").defer("profit_curve", "evaluation"))

    @extend_schema(
        tags=["targeting"], summary="Choose whom to contact, from a model's scores",
        description="Chooses, per scored customer with marketing consent (in the segment, "
                    "if given), the arm with the highest expected profit, uplift × "
                    "value_per_conversion − the arm's cost per contact − its cost per "
                    "conversion × predicted treated outcome − the campaign's harm prices × "
                    "predicted guardrail harm, or no contact when no arm pays; then the most "
                    "profitable within the budget, max_contacts, arm capacities and harm caps. "
                    "The list carries a held-out evaluation against baselines. Omitted values "
                    "come from the campaign; the model version defaults to the campaign's "
                    "champion uplift model (400 if it has none).",
        parameters=[CAMPAIGN_KEY], request=s.TargetingListInSerializer,
        responses={201: s.TargetingListSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample("Request", value=TARGET_LIST_IN_EXAMPLE, request_only=True),
                  OpenApiExample("Created", value=TARGET_LIST_EXAMPLE, response_only=True,
                                 status_codes=[201])],
    )
    def post(self, request, key: str):
        body = s.TargetingListInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        campaign = get_object_or_404(Campaign, key=key)
        version_id = data.pop("model_version")
        version = None
        if version_id is not None:
            version = ModelVersion.objects.filter(pk=version_id).first()
            if version is None:
                raise ValidationError({"model_version": ["no model version with this id"]})
        segment = segment_or_invalid(data.pop("segment"))
        with transaction.atomic():
            target = targeting_list_create(campaign=campaign, model_version=version,
                                           segment=segment, **data)
            audit_record("create", audit_target(target), request=request)
        return Response(s.TargetingListSerializer(target).data, status=status.HTTP_201_CREATED)


class TargetingListDetailView(GenericAPIView):
    permission_model = TargetingList
    serializer_class = s.TargetingListSerializer

    @extend_schema(
        tags=["targeting"], summary="One targeting list with its profit curve",
        parameters=[TARGET_LIST_ID],
        responses={200: s.TargetingListSerializer, **error_responses(404)},
        examples=[OpenApiExample("Targeting list", value=TARGET_LIST_EXAMPLE,
                                 response_only=True)],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        return Response(self.get_serializer(targeting_list_or_404(id)).data)


class TargetingEntryListView(ListView):
    permission_model = TargetingList
    read_permission = EXPORT_TARGETING_LIST  # the customers themselves, as the CSV
    pagination_class = RankCursorPagination
    serializer_class = s.TargetingEntrySerializer

    @extend_schema(
        tags=["targeting"], summary="The list's customers by rank, best first",
        parameters=[TARGET_LIST_ID],
        responses={200: s.TargetingEntrySerializer(many=True), **error_responses(404)},
        examples=[OpenApiExample("Entry", response_only=True, value={
            "rank": 1, "customer": "crm-1001", "arm": "email", "uplift": 0.0812,
            "expected_profit": 3.198, "uplift_by_arm": {"email": 0.0812,
                                                         "email_discount": 0.0415}})],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        target = get_object_or_404(TargetingList, pk=id)
        _audit_export(request, target, "pages")
        return self.list(request, targeting_entries(target).select_related("customer"))


class TargetingListCsvView(GenericAPIView):
    permission_model = TargetingList
    read_permission = EXPORT_TARGETING_LIST

    def perform_content_negotiation(self, request, force=False):
        # The body is CSV whatever Accept says (a stream DRF does not render), and errors
        # are the API's JSON, so negotiation never refuses the request.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        tags=["targeting"], summary="The list as CSV, streamed",
        description="A header, then one row per customer by rank. Streamed in chunks, so "
                    "lists of any size download without being held in memory.",
        parameters=[TARGET_LIST_ID],
        responses={(200, "text/csv"): OpenApiResponse(
            OpenApiTypes.STR, description="rank, customer_external_id, arm, "
            "predicted_uplift, expected_profit, then uplift_<arm> per arm. Cells that a "
            "spreadsheet would read as a formula start with an apostrophe.",
            examples=[OpenApiExample("CSV", value=CSV_EXAMPLE, response_only=True)]),
            **error_responses(404)},
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        target = get_object_or_404(TargetingList, pk=id)
        _audit_export(request, target, "csv")
        response = StreamingHttpResponse(targeting_list_csv(target),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="targeting-list-{target.id}.csv"'
        return response


# --- Targeting follow-ups ------------------------------------------------------------

FOLLOW_UP_ID = OpenApiParameter(
    "id", int, OpenApiParameter.PATH, description="The follow-up's id.",
    examples=[OpenApiExample("Follow-up", value=2)])
FOLLOW_UP_EXAMPLE = {
    "id": 2, "targeting_list": 3, "experiment": "followup_3_9f2c41aa", "status": "draft",
    "shares": {"policy": 0.45, "random": 0.45, "holdout": 0.1},
    "plan": {"eligible": 2, "on_list": 1, "contact_rate": 0.5, "offer_mix": {"email": 1.0},
             "economics": {"value_per_conversion": 40.0,
                           "default": {"cost_per_contact": 0.05, "cost_per_conversion": 0.0},
                           "offers": {"email": {"cost_per_contact": 0.05,
                                                "cost_per_conversion": 0.0}}},
             "populated_at": None},
    "analysis": {}, "summary": "Not analysed yet.", "analysed_at": None,
    "created_at": "2026-06-17T09:00:00Z"}
FOLLOW_UP_ANALYSED_EXAMPLE = {
    **FOLLOW_UP_EXAMPLE, "status": "running", "analysed_at": "2026-07-01T09:00:00Z",
    "analysis": {
        "metric": "purchase", "value_per_unit": 40.0, "confidence": 0.95,
        "groups": {"policy": {"customers": 4500, "contacts": 1800, "offers": {"email": 1800},
                              "conversions": 410.0, "value": 16400.0, "profit": 16310.0,
                              "profit_per_customer": 3.62}},
        "policy_minus": {"random": {"difference": 0.42, "se": 0.16, "ci_low": 0.11,
                                    "ci_high": 0.73, "p_value": 0.008},
                         "holdout": {"difference": 0.95, "se": 0.18, "ci_low": 0.6,
                                     "ci_high": 1.3, "p_value": 0.0001}}},
    "summary": "The policy earned +€0.42 per customer more than random (95% CI +0.11 to "
               "+0.73) and +€0.95 more than no contact (95% CI +0.60 to +1.30)."}
PLAN_CSV_EXAMPLE = "customer_external_id,group,offer\r\ncrm-1001,policy,email\r\ncrm-1002,holdout,\r\n"


def follow_up_or_404(id: int) -> TargetingFollowUp:  # noqa: A002 - the path parameter's name
    return get_object_or_404(TargetingFollowUp.objects.select_related(
        "experiment", "targeting_list__model_version", "targeting_list__campaign"), pk=id)


class TargetingListFollowUpView(GenericAPIView):
    permission_model = TargetingFollowUp
    write_permission = "experiments.add_experiment"  # a follow-up is a new experiment (admin)
    serializer_class = s.FollowUpInSerializer

    @extend_schema(
        tags=["targeting"], summary="Create a follow-up experiment of the list's policy",
        description="Randomises the list's population (consenting, not erased, scored by its "
                    "model version, in its segment) into policy (the list's offers), random "
                    "(the same contact rate and offer mix at random) and holdout (no contact), "
                    "by `shares`. Left in draft unless `start` is true; start it with POST "
                    "/follow-ups/{id}/start/.",
        parameters=[TARGET_LIST_ID], request=s.FollowUpInSerializer,
        responses={201: s.FollowUpSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample("Request", request_only=True, value={
                      "shares": {"policy": 0.45, "random": 0.45, "holdout": 0.1},
                      "start": False}),
                  OpenApiExample("Created", value=FOLLOW_UP_EXAMPLE, response_only=True,
                                 status_codes=[201])],
    )
    def post(self, request, id: int):  # noqa: A002 - the path parameter's name
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            follow_up = targeting_follow_up_create(targeting_list=targeting_list_or_404(id),
                                                   **body.validated_data)
            audit_record("create", audit_target(follow_up), request=request)
        return Response(s.FollowUpSerializer(follow_up).data, status=status.HTTP_201_CREATED)


class FollowUpDetailView(GenericAPIView):
    permission_model = TargetingFollowUp
    serializer_class = s.FollowUpSerializer

    @extend_schema(
        tags=["targeting"], summary="One follow-up: its plan and latest profit analysis",
        parameters=[FOLLOW_UP_ID], responses={200: s.FollowUpSerializer, **error_responses(404)},
        examples=[OpenApiExample("Follow-up", value=FOLLOW_UP_ANALYSED_EXAMPLE,
                                 response_only=True)],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        return Response(self.get_serializer(follow_up_or_404(id)).data)


class FollowUpStartView(GenericAPIView):
    permission_model = TargetingFollowUp
    write_permission = RUN_TASKS
    serializer_class = s.FollowUpSerializer

    @extend_schema(
        tags=["targeting"], summary="Start the follow-up: assign its population",
        description="Starts the experiment if a draft, assigns every eligible customer a group "
                    "and draws the random group's offers. Safe to repeat.",
        parameters=[FOLLOW_UP_ID], request=None,
        responses={200: s.FollowUpSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample("Started", response_only=True,
                                 value={**FOLLOW_UP_EXAMPLE, "status": "running"})],
    )
    def post(self, request, id: int):  # noqa: A002 - the path parameter's name
        with transaction.atomic():
            follow_up = targeting_follow_up_start(follow_up=follow_up_or_404(id))
            audit_record("start", audit_target(follow_up), request=request)
        return Response(self.get_serializer(follow_up).data)


class FollowUpAnalyseView(GenericAPIView):
    permission_model = TargetingFollowUp
    write_permission = RUN_TASKS
    serializer_class = s.FollowUpSerializer

    @extend_schema(
        tags=["targeting"], summary="Analyse the follow-up's incremental profit now",
        description="Profit per customer (value of conversions, or revenue, minus the contact "
                    "and conversion costs of the offer sent) per group, summed in the database; "
                    "the policy against random and against holdout with Welch intervals.",
        parameters=[FOLLOW_UP_ID], request=None,
        responses={200: s.FollowUpSerializer, **error_responses(404)},
        examples=[OpenApiExample("Analysed", value=FOLLOW_UP_ANALYSED_EXAMPLE,
                                 response_only=True)],
    )
    def post(self, request, id: int):  # noqa: A002 - the path parameter's name
        with transaction.atomic():
            follow_up = targeting_follow_up_analyse(follow_up=follow_up_or_404(id))
            audit_record("run", audit_target(follow_up), request=request,
                         detail={"task": "targeting_follow_up_analyse"})
        return Response(self.get_serializer(follow_up).data)


class CustomerIdCursorPagination(IdCursorPagination):
    ordering = "customer_id"


class FollowUpPlanView(ListView):
    permission_model = TargetingFollowUp
    read_permission = EXPORT_TARGETING_LIST
    pagination_class = CustomerIdCursorPagination
    serializer_class = s.FollowUpPlanEntrySerializer

    @extend_schema(
        tags=["targeting"], summary="What to send each customer of the follow-up",
        description="One row per assigned customer: group and offer (null: no contact). Empty "
                    "until the follow-up starts.",
        parameters=[FOLLOW_UP_ID],
        responses={200: s.FollowUpPlanEntrySerializer(many=True), **error_responses(404)},
        examples=[OpenApiExample("Entry", response_only=True, value={
            "customer": "crm-1001", "group": "policy", "offer": "email"})],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        follow_up = follow_up_or_404(id)
        _audit_export(request, follow_up, "pages")
        return self.list(request, follow_up_plan(follow_up))


class FollowUpPlanCsvView(GenericAPIView):
    permission_model = TargetingFollowUp
    read_permission = EXPORT_TARGETING_LIST

    def perform_content_negotiation(self, request, force=False):
        # As for the list's CSV: the body is CSV whatever Accept says.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        tags=["targeting"], summary="The follow-up's plan as CSV, streamed",
        description="customer_external_id, group, offer (empty: no contact), by customer. "
                    "Cells starting with = + - @ are prefixed with ' so spreadsheets never "
                    "run them as formulas.",
        parameters=[FOLLOW_UP_ID],
        responses={(200, "text/csv"): OpenApiResponse(
            OpenApiTypes.STR, description="customer_external_id, group, offer",
            examples=[OpenApiExample("CSV", value=PLAN_CSV_EXAMPLE, response_only=True)]),
            **error_responses(404)},
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        follow_up = follow_up_or_404(id)
        _audit_export(request, follow_up, "csv")
        response = StreamingHttpResponse(follow_up_plan_csv(follow_up),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="follow-up-{follow_up.id}.csv"'
        return response
