"""Experiments: create, start, stop; assignment; exposures; conversions; tasks;
analysis results; model versions, training and scores; targeting lists.

Each view: check the shape with a serializer, call a service, serialise.
"""

from __future__ import annotations

from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from experiments.api import serializers as s
from experiments.assignment import assign_customer
from experiments.models import (
    AnalysisResult,
    Assignment,
    CustomerScore,
    Experiment,
    Exposure,
    ModelVersion,
    TargetingEntry,
    TargetingList,
    TaskRun,
)
from experiments.outcomes import outcome_sums
from experiments.services import (
    ArmSpec,
    MetricSpec,
    assign_customers,
    conversions_record,
    customers_score_request,
    experiment_analyse_request,
    experiment_create,
    experiment_transition,
    exposures_record,
    response_model_train_request,
    uplift_model_train_request,
)
from experiments.targeting import targeting_list_create, targeting_list_csv
from marketing.api.errors import RowsRejected
from marketing.api.pagination import IdCursorPagination, NewestFirstCursorPagination
from marketing.api.schema import bulk_error_responses, error_responses
from marketing.api.views import (
    CAMPAIGN_KEY,
    EXTERNAL_ID,
    TASK_QUEUED_EXAMPLE,
    ListView,
    customer_or_404,
)
from marketing.models import Campaign, Customer, Event, Segment
from marketing.services import aware_datetime

EXPERIMENT_KEY = OpenApiParameter(
    "key", str, OpenApiParameter.PATH, description="The experiment's key.",
    examples=[OpenApiExample("Experiment", value="summer_email_ab")])
ARMS_EXAMPLE = [
    {"name": "control", "weight": 1.0, "is_control": True, "contacts_customer": False},
    {"name": "email", "weight": 1.0, "is_control": False, "contacts_customer": True},
]
METRICS_EXAMPLE = [
    {"name": "purchase", "event_kind": "purchase", "aggregation": "converted",
     "role": "primary", "higher_is_better": True},
    {"name": "revenue", "event_kind": "purchase", "aggregation": "sum", "role": "secondary",
     "higher_is_better": True},
]
EXPERIMENT_IN_EXAMPLE = {
    "campaign": "summer_email", "key": "summer_email_ab", "name": "Summer e-mail A/B",
    "hypothesis": "The e-mail raises 14-day conversion.", "arms": ARMS_EXAMPLE,
    "metrics": METRICS_EXAMPLE, "eligibility_segment": None, "attribution_window_days": 14,
    "traffic_fraction": 1.0, "layer": "",
}
EXPERIMENT_OUT_EXAMPLE = {
    **EXPERIMENT_IN_EXAMPLE, "status": "running", "salt": "9f2c1a7b3d4e5f60",
    "started_at": "2026-06-01T12:00:00Z", "ended_at": None, "created_at": "2026-06-01T11:00:00Z",
}
DECISION_EXAMPLE = {"customer": "crm-1001", "arm": "email", "reason": "assigned",
                    "contacts_customer": True, "created": True}
NO_ARM_EXAMPLE = {"customer": "crm-1002", "arm": None, "reason": "no marketing consent",
                  "contacts_customer": None, "created": False}


def experiment_or_404(key: str) -> Experiment:
    return get_object_or_404(
        Experiment.objects.select_related("campaign", "eligibility_segment"), key=key)


def _decision(external_id: str, arm, reason: str, created: bool) -> dict:
    return {"customer": external_id, "arm": arm.name if arm else None, "reason": reason,
            "contacts_customer": arm.contacts_customer if arm else None, "created": created}


class ExperimentListView(ListView):
    permission_model = Experiment
    serializer_class = s.ExperimentSerializer
    filter_class = s.ExperimentFilterSerializer

    @extend_schema(
        tags=["experiments"], summary="List experiments",
        parameters=[s.ExperimentFilterSerializer],
        responses={200: s.ExperimentSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Experiment", value=EXPERIMENT_OUT_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return self.list(request, Experiment.objects.select_related(
            "campaign", "eligibility_segment").prefetch_related("arms", "metrics"))

    @extend_schema(
        tags=["experiments"], summary="Create a draft experiment with its arms and metrics",
        request=s.ExperimentInSerializer,
        responses={201: s.ExperimentSerializer, **error_responses(400, 409)},
        examples=[OpenApiExample("A/B e-mail test", value=EXPERIMENT_IN_EXAMPLE,
                                 request_only=True),
                  OpenApiExample("Created", response_only=True, status_codes=[201],
                                 value={**EXPERIMENT_OUT_EXAMPLE, "status": "draft",
                                        "started_at": None})],
    )
    def post(self, request):
        body = s.ExperimentInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        campaign = Campaign.objects.filter(key=data.pop("campaign")).first()
        if campaign is None:
            raise ValidationError({"campaign": ["no campaign with this key"]})
        segment_key = data.pop("eligibility_segment")
        segment = None
        if segment_key is not None:
            segment = Segment.objects.filter(key=segment_key).first()
            if segment is None:
                raise ValidationError({"eligibility_segment": ["no segment with this key"]})
        experiment = experiment_create(
            campaign=campaign, eligibility_segment=segment,
            arms=[ArmSpec(**a) for a in data.pop("arms")],
            metrics=[MetricSpec(**m) for m in data.pop("metrics")], **data)
        return Response(s.ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailView(GenericAPIView):
    permission_model = Experiment
    serializer_class = s.ExperimentSerializer

    @extend_schema(
        tags=["experiments"], summary="One experiment", parameters=[EXPERIMENT_KEY],
        responses={200: s.ExperimentSerializer, **error_responses(404)},
        examples=[OpenApiExample("Experiment", value=EXPERIMENT_OUT_EXAMPLE, response_only=True)],
    )
    def get(self, request, key: str):
        return Response(self.get_serializer(experiment_or_404(key)).data)


class _TransitionView(GenericAPIView):
    permission_model = Experiment
    serializer_class = s.ExperimentSerializer
    to: str = ""

    def post(self, request, key: str):
        experiment = experiment_transition(experiment=experiment_or_404(key), to=self.to)
        return Response(self.get_serializer(experiment).data)


def _transition_schema(verb: str, to: str):
    return extend_schema(
        tags=["experiments"], summary=f"{verb} the experiment", parameters=[EXPERIMENT_KEY],
        description=f"Moves the experiment to {to}. Allowed: draft -> running -> stopped -> "
                    "archived; anything else is a 400.",
        request=None, responses={200: s.ExperimentSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample(to.capitalize(), response_only=True,
                                 value={**EXPERIMENT_OUT_EXAMPLE, "status": to})],
    )


class ExperimentStartView(_TransitionView):
    to = Experiment.Status.RUNNING

    @_transition_schema("Start", "running")
    def post(self, request, key: str):
        return super().post(request, key)


class ExperimentStopView(_TransitionView):
    to = Experiment.Status.STOPPED

    @_transition_schema("Stop", "stopped")
    def post(self, request, key: str):
        return super().post(request, key)


# --- Assignment ------------------------------------------------------------

class AssignmentListView(ListView):
    permission_model = Assignment
    serializer_class = s.AssignmentSerializer
    filter_class = s.AssignmentFilterSerializer

    @extend_schema(
        tags=["assignment"], summary="List the experiment's assignments",
        parameters=[EXPERIMENT_KEY, s.AssignmentFilterSerializer],
        responses={200: s.AssignmentSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Assignment", response_only=True, value={
            "id": 7, "customer": "crm-1001", "arm": "email",
            "assigned_at": "2026-06-01T12:00:00Z"})],
    )
    def get(self, request, key: str):
        experiment = experiment_or_404(key)
        return self.list(request, Assignment.objects.filter(experiment=experiment)
                         .select_related("customer", "arm"))

    @extend_schema(
        tags=["assignment"], summary="Assign one customer: the arm, or the reason for none",
        description="Deterministic: the same customer always gets the same arm. A stored "
                    "assignment is returned as it is.",
        parameters=[EXPERIMENT_KEY], request=s.AssignInSerializer,
        responses={200: s.AssignmentDecisionSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample("Request", value={"customer": "crm-1001"}, request_only=True),
                  OpenApiExample("Assigned", value=DECISION_EXAMPLE, response_only=True),
                  OpenApiExample("Not assigned", value=NO_ARM_EXAMPLE, response_only=True)],
    )
    def post(self, request, key: str):
        body = s.AssignInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = get_object_or_404(Experiment.objects.select_related("eligibility_segment"),
                                       key=key)
        customer = Customer.objects.filter(external_id=body.validated_data["customer"]).first()
        if customer is None:
            raise ValidationError({"customer": ["no customer with this external_id"]})
        decision = assign_customer(experiment=experiment, customer=customer)
        return Response(_decision(customer.external_id, decision.arm, decision.reason,
                                  decision.created))


class AssignmentBulkView(GenericAPIView):
    permission_model = Assignment
    throttle_scope = "bulk"
    serializer_class = s.AssignBulkInSerializer

    @extend_schema(
        tags=["assignment"], summary="Assign up to 10,000 customers",
        description="One decision per requested customer, in request order, by the same rules "
                    "as single assignment. Unknown customers are rejected and then nothing is "
                    "written.",
        parameters=[EXPERIMENT_KEY], request=s.AssignBulkInSerializer,
        responses={200: s.AssignBulkResultSerializer, **bulk_error_responses(404, 409)},
        examples=[
            OpenApiExample("Request", value={"customers": ["crm-1001", "crm-1002"]},
                           request_only=True),
            OpenApiExample("Decisions", response_only=True, value={
                "assigned": 1, "created": 1, "decisions": [DECISION_EXAMPLE, NO_ARM_EXAMPLE]}),
        ],
    )
    def post(self, request, key: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = experiment_or_404(key)
        external_ids = body.validated_data["customers"]
        result = assign_customers(experiment=experiment, external_ids=external_ids)
        if result.rejected:
            raise RowsRejected(result.rejected, total=len(external_ids))
        decisions = [_decision(*d) for d in result.decisions]
        return Response({"assigned": sum(1 for d in decisions if d["arm"] is not None),
                         "created": sum(1 for d in decisions if d["created"]),
                         "decisions": decisions})


class AssignmentDetailView(GenericAPIView):
    permission_model = Assignment
    serializer_class = s.AssignmentSerializer

    @extend_schema(
        tags=["assignment"], summary="A customer's stored assignment (never creates one)",
        parameters=[EXPERIMENT_KEY, EXTERNAL_ID],
        responses={200: s.AssignmentSerializer, **error_responses(404)},
        examples=[OpenApiExample("Assignment", response_only=True, value={
            "id": 7, "customer": "crm-1001", "arm": "email",
            "assigned_at": "2026-06-01T12:00:00Z"})],
    )
    def get(self, request, key: str, external_id: str):
        assignment = get_object_or_404(
            Assignment.objects.select_related("customer", "arm"),
            experiment__key=key, customer__external_id=external_id)
        return Response(self.get_serializer(assignment).data)


# --- Exposures and conversions ----------------------------------------------

EXPOSURE_EXAMPLE = {"customer": "crm-1001", "exposed_at": "2026-06-01T13:00:00Z",
                    "idempotency_key": "send-5512"}


class ExposureListView(ListView):
    permission_model = Exposure
    serializer_class = s.ExposureSerializer
    filter_class = s.ExposureFilterSerializer

    @extend_schema(
        tags=["exposures"], summary="List the experiment's exposures",
        parameters=[EXPERIMENT_KEY, s.ExposureFilterSerializer],
        responses={200: s.ExposureSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Exposure", response_only=True,
                                 value={"id": 3, "arm": "email", **EXPOSURE_EXAMPLE})],
    )
    def get(self, request, key: str):
        experiment = experiment_or_404(key)
        return self.list(request, Exposure.objects.filter(assignment__experiment=experiment)
                         .select_related("assignment__customer", "assignment__arm"))

    @extend_schema(
        tags=["exposures"], summary="Record up to 10,000 exposures",
        description="The customer actually received the treatment. Idempotent per "
                    "(assignment, idempotency_key); all or nothing.",
        parameters=[EXPERIMENT_KEY], request=s.ExposureBulkInSerializer,
        responses={200: s.RecordResultSerializer, **bulk_error_responses(404, 409)},
        examples=[OpenApiExample("Request", request_only=True,
                                 value={"exposures": [EXPOSURE_EXAMPLE]}),
                  OpenApiExample("Result", response_only=True,
                                 value={"created": 1, "duplicates": 0})],
    )
    def post(self, request, key: str):
        body = s.ExposureBulkInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = experiment_or_404(key)
        rows = body.validated_data["exposures"]
        # Parse times here; a value that is not one is left for the service to report.
        parsed = [{**row, "exposed_at": aware_datetime(row.get("exposed_at")) or
                   row.get("exposed_at")} if isinstance(row, dict) else row for row in rows]
        result = exposures_record(experiment=experiment, rows=parsed)
        if result.rejected:
            raise RowsRejected(result.rejected, total=len(rows))
        return Response({"created": result.created, "duplicates": result.duplicates})


class ConversionBulkView(GenericAPIView):
    permission_model = Event
    throttle_scope = "bulk"
    serializer_class = s.ConversionBulkInSerializer

    @extend_schema(
        tags=["exposures"], summary="Record up to 10,000 conversions of assigned customers",
        description="Conversions are events (kind defaults to the primary metric's, e.g. "
                    "purchase) of customers assigned in this experiment. Idempotent per "
                    "(source, idempotency_key); all or nothing.",
        parameters=[EXPERIMENT_KEY], request=s.ConversionBulkInSerializer,
        responses={200: s.RecordResultSerializer, **bulk_error_responses(404, 409)},
        examples=[OpenApiExample("Request", request_only=True, value={
            "source": "shop", "conversions": [{
                "customer": "crm-1001", "occurred_at": "2026-06-03T18:20:00Z", "value": 59.9,
                "idempotency_key": "order-77"}]}),
                  OpenApiExample("Result", response_only=True,
                                 value={"created": 1, "duplicates": 0})],
    )
    def post(self, request, key: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = experiment_or_404(key)
        rows = body.validated_data["conversions"]
        result = conversions_record(experiment=experiment, rows=rows,
                                    source=body.validated_data["source"])
        if result.rejected:
            raise RowsRejected(result.rejected, total=len(rows))
        return Response({"created": result.created, "duplicates": result.duplicates})


class OutcomesView(GenericAPIView):
    permission_model = Experiment
    serializer_class = s.OutcomesSerializer

    @extend_schema(
        tags=["experiments"], summary="Per-arm sufficient statistics of every metric",
        description="Computed now in the database over the attribution window: n, Σy, Σy², "
                    "and the pre-assignment covariate sums used by CUPED.",
        parameters=[EXPERIMENT_KEY],
        responses={200: s.OutcomesSerializer, **error_responses(404)},
        examples=[OpenApiExample("Outcomes", response_only=True, value={
            "experiment": "summer_email_ab", "arms": [{
                "arm": "control", "is_control": True, "n": 5000, "metrics": {
                    "purchase": {"n": 5000, "sum_y": 250.0, "sum_y2": 250.0, "sum_x": 210.0,
                                 "sum_x2": 210.0, "sum_xy": 40.0}}}]})],
    )
    def get(self, request, key: str):
        experiment = experiment_or_404(key)
        table = outcome_sums(experiment).get(None, {})
        arms = []
        for arm in experiment.arms.order_by("id"):
            sums = table.get(arm.id, {})
            arms.append({
                "arm": arm.name, "is_control": arm.is_control,
                "n": next(iter(sums.values())).n if sums else 0,
                "metrics": {name: vars(m) for name, m in sums.items()},
            })
        return Response({"experiment": experiment.key, "arms": arms})


# --- Tasks -------------------------------------------------------------------

TASK_EXAMPLE = {"id": 42, "name": "segment_size", "status": "succeeded", "progress": 1.0,
                "step": "done", "params": {"segment_id": 3},
                "result": {"segment_id": 3, "members": 1840}, "error": "",
                "created_at": "2026-06-02T08:00:00Z", "started_at": "2026-06-02T08:00:01Z",
                "finished_at": "2026-06-02T08:00:02Z"}


class TaskRunListView(ListView):
    permission_model = TaskRun
    pagination_class = NewestFirstCursorPagination
    serializer_class = s.TaskRunSerializer
    filter_class = s.TaskRunFilterSerializer

    @extend_schema(
        tags=["tasks"], summary="List background tasks, newest first",
        parameters=[s.TaskRunFilterSerializer],
        responses={200: s.TaskRunSerializer(many=True), **error_responses(400, 404)},
        examples=[OpenApiExample("Task", value=TASK_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return self.list(request, TaskRun.objects.all())


class TaskRunDetailView(GenericAPIView):
    permission_model = TaskRun
    serializer_class = s.TaskRunSerializer

    @extend_schema(
        tags=["tasks"], summary="A background task's status, progress and result",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH,
                                     examples=[OpenApiExample("Task", value=42)])],
        responses={200: s.TaskRunSerializer, **error_responses(404)},
        examples=[OpenApiExample("Task", value=TASK_EXAMPLE, response_only=True)],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        return Response(self.get_serializer(get_object_or_404(TaskRun, pk=id)).data)


def segment_or_invalid(key: str | None, field: str = "segment") -> Segment | None:
    """The segment with this key; None for no key; a 400 on ``field`` for an unknown one."""
    if key is None:
        return None
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        raise ValidationError({field: ["no segment with this key"]})
    return segment


def queued(run: TaskRun) -> Response:
    return Response(s.TaskRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def _queued_example(name: str, params: dict) -> OpenApiExample:
    return OpenApiExample("Queued", response_only=True, status_codes=[202],
                          value={**TASK_QUEUED_EXAMPLE, "name": name, "params": params})


# --- Analysis results ----------------------------------------------------------

RESULT_ID = OpenApiParameter(
    "id", int, OpenApiParameter.PATH, description="The analysis result's id.",
    examples=[OpenApiExample("Analysis result", value=5)])
DECISION_REASONS_EXAMPLE = [
    "Arm 'email' improves primary metric 'purchase' by +52.10% vs control "
    "(adjusted p = 0.0031 < 0.05).",
]
RESULT_SUMMARY_EXAMPLE = {"id": 5, "created_at": "2026-06-15T06:00:04Z", "customers": 10000,
                          "decision": "ship", "decision_reasons": DECISION_REASONS_EXAMPLE,
                          "srm_p_value": 0.6171}
RESULT_EXAMPLE = {
    **RESULT_SUMMARY_EXAMPLE, "experiment": "summer_email_ab", "task_run": 42,
    "payload": {
        "inference": "sequential", "alpha": 0.05,
        "sample_sizes": {"control": 5025, "email": 4975},
        "srm": {"observed": {"control": 5025, "email": 4975},
                "expected": {"control": 5000.0, "email": 5000.0}, "statistic": 0.25, "df": 1,
                "p_value": 0.6171, "threshold": 0.001, "mismatch": False},
        "metrics": [{
            "metric": "purchase", "kind": "proportion", "role": "primary",
            "increase_is_good": True,
            "arms": [{"arm": "control", "n": 5025, "mean": 0.0961},
                     {"arm": "email", "n": 4975, "mean": 0.1463}],
            "comparisons": [{"arm": "email", "estimate_used": "cuped",
                             "p_value": 0.0031, "p_value_adjusted": 0.0031,
                             "significant": True, "direction": "better"}]}],
        "decision": {"action": "ship", "arm": "email", "reasons": DECISION_REASONS_EXAMPLE},
        "segments": [],
    },
}


class ExperimentAnalyseView(GenericAPIView):
    permission_model = Experiment
    serializer_class = s.TaskRunSerializer

    @extend_schema(
        tags=["analysis"], summary="Analyse the experiment in the background",
        description="Queues a snapshot of the analysis: per-arm effects of every metric, the "
                    "sample-ratio check and the ship / stop / keep_running decision. Poll "
                    "GET /api/v1/tasks/{id}/; its result names the `analysis_result_id`, "
                    "which is then the newest of the experiment's results.",
        parameters=[EXPERIMENT_KEY], request=None,
        responses={202: s.TaskRunSerializer, **error_responses(404)},
        examples=[_queued_example("experiment_analyse", {"experiment_id": 12})],
    )
    def post(self, request, key: str):
        experiment = experiment_or_404(key)
        # The task is queued when this block commits, so the worker sees the run.
        with transaction.atomic():
            run = experiment_analyse_request(experiment=experiment)
        return queued(run)


class AnalysisResultListView(ListView):
    permission_model = AnalysisResult
    pagination_class = NewestFirstCursorPagination
    serializer_class = s.AnalysisResultSummarySerializer

    @extend_schema(
        tags=["analysis"], summary="The experiment's analysis history, newest first",
        description="Summaries only; GET .../results/{id}/ has the full analysis.",
        parameters=[EXPERIMENT_KEY],
        responses={200: s.AnalysisResultSummarySerializer(many=True), **error_responses(404)},
        examples=[OpenApiExample("Result", value=RESULT_SUMMARY_EXAMPLE, response_only=True)],
    )
    def get(self, request, key: str):
        experiment = experiment_or_404(key)
        return self.list(request, AnalysisResult.objects.filter(experiment=experiment)
                         .defer("payload"))


class AnalysisResultLatestView(GenericAPIView):
    permission_model = AnalysisResult
    serializer_class = s.AnalysisResultSerializer

    @extend_schema(
        tags=["analysis"], summary="The experiment's newest analysis, in full",
        description="404 until the first analysis has finished.",
        parameters=[EXPERIMENT_KEY],
        responses={200: s.AnalysisResultSerializer, **error_responses(404)},
        examples=[OpenApiExample("Result", value=RESULT_EXAMPLE, response_only=True)],
    )
    def get(self, request, key: str):
        experiment = experiment_or_404(key)
        result = (AnalysisResult.objects.filter(experiment=experiment)
                  .select_related("experiment").order_by("-created_at", "-id").first())
        if result is None:
            raise NotFound(f"No analysis of experiment '{key}' yet.")
        return Response(self.get_serializer(result).data)


class AnalysisResultDetailView(GenericAPIView):
    permission_model = AnalysisResult
    serializer_class = s.AnalysisResultSerializer

    @extend_schema(
        tags=["analysis"], summary="One analysis of the experiment, in full",
        parameters=[EXPERIMENT_KEY, RESULT_ID],
        responses={200: s.AnalysisResultSerializer, **error_responses(404)},
        examples=[OpenApiExample("Result", value=RESULT_EXAMPLE, response_only=True)],
    )
    def get(self, request, key: str, id: int):  # noqa: A002 - the path parameter's name
        result = get_object_or_404(AnalysisResult.objects.select_related("experiment"),
                                   pk=id, experiment__key=key)
        return Response(self.get_serializer(result).data)


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
                         .defer("metrics", "curves", "feature_reference"))


def model_version_or_404(id: int) -> ModelVersion:  # noqa: A002 - the path parameter's name
    return get_object_or_404(ModelVersion.objects.select_related("campaign", "experiment"),
                             pk=id)


class ModelVersionDetailView(GenericAPIView):
    permission_model = ModelVersion
    serializer_class = s.ModelVersionSerializer

    @extend_schema(
        tags=["models"], summary="One model version with its held-out quality",
        parameters=[MODEL_VERSION_ID],
        responses={200: s.ModelVersionSerializer, **error_responses(404)},
        examples=[OpenApiExample("Model version", value=MODEL_VERSION_EXAMPLE,
                                 response_only=True)],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        return Response(self.get_serializer(model_version_or_404(id)).data)


class ExperimentTrainView(GenericAPIView):
    permission_model = Experiment
    serializer_class = s.UpliftTrainInSerializer

    @extend_schema(
        tags=["models"], summary="Train uplift models on the experiment in the background",
        description="One model version per estimator, evaluated on held-out customers; a "
                    "ready version that beats the campaign's champion on Qini becomes "
                    "champion. The task's result lists `model_version_ids`.",
        parameters=[EXPERIMENT_KEY], request=s.UpliftTrainInSerializer,
        responses={202: s.TaskRunSerializer, **error_responses(400, 404)},
        examples=[
            OpenApiExample("Request", request_only=True, value={
                "estimators": ["tarnet"], "baselines": ["X"], "metric": "purchase",
                "estimator_params": {"tarnet": {"max_epochs": 50}}, "random_state": 0}),
            _queued_example("uplift_model_train", {
                "experiment_id": 12, "estimators": ["tarnet"], "baselines": ["X"],
                "metric": "purchase", "estimator_params": {"tarnet": {"max_epochs": 50}},
                "random_state": 0}),
        ],
    )
    def post(self, request, key: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        experiment = experiment_or_404(key)
        with transaction.atomic():
            run = uplift_model_train_request(experiment=experiment, **body.validated_data)
        return queued(run)


class CampaignTrainResponseView(GenericAPIView):
    permission_model = Campaign
    serializer_class = s.ResponseTrainInSerializer

    @extend_schema(
        tags=["models"], summary="Train a response (propensity) model in the background",
        description="Predicts whether a customer will have the event within the window; needs "
                    "no experiment. The task's result names the `model_version_id`.",
        parameters=[CAMPAIGN_KEY], request=s.ResponseTrainInSerializer,
        responses={202: s.TaskRunSerializer, **error_responses(400, 404)},
        examples=[
            OpenApiExample("Request", request_only=True,
                           value={"event_kind": "purchase", "window_days": 30,
                                  "model_params": {}}),
            _queued_example("response_model_train", {
                "campaign_id": 4, "event_kind": "purchase", "window_days": 30,
                "model_params": {}}),
        ],
    )
    def post(self, request, key: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        campaign = get_object_or_404(Campaign, key=key)
        with transaction.atomic():
            run = response_model_train_request(campaign=campaign, **body.validated_data)
        return queued(run)


class ModelVersionScoreView(GenericAPIView):
    permission_model = ModelVersion
    serializer_class = s.ScoreInSerializer

    @extend_schema(
        tags=["models"], summary="Score every customer (or a segment's) in the background",
        description="Replaces this version's scores of the customers scored; the version must "
                    "be ready. Read them with GET .../scores/.",
        parameters=[MODEL_VERSION_ID], request=s.ScoreInSerializer,
        responses={202: s.TaskRunSerializer, **error_responses(400, 404)},
        examples=[
            OpenApiExample("Request", request_only=True, value={"segment": "frequent_web"}),
            _queued_example("customers_score", {
                "model_version_id": 7, "segment_id": 3, "chunk_size": 50000, "chunks": 1,
                "cutoff": "2026-06-16T03:00:00+00:00"}),
        ],
    )
    def post(self, request, id: int):  # noqa: A002 - the path parameter's name
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = model_version_or_404(id)
        segment = segment_or_invalid(body.validated_data["segment"])
        with transaction.atomic():
            run = customers_score_request(model_version=version, segment=segment)
        return queued(run)


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
    "expected_conversions": 39.77, "created_at": "2026-06-16T04:00:00Z"}
TARGET_LIST_EXAMPLE = {**TARGET_LIST_SUMMARY_EXAMPLE,
                       "profit_curve": {"contacts": [0, 605, 1210],
                                        "profit": [0.0, 1180.4, 1530.25]}}
CSV_EXAMPLE = ("rank,customer_external_id,arm,predicted_uplift,expected_profit\r\n"
               "1,crm-1001,email,0.081200,3.1980\r\n"
               "2,crm-2417,email,0.064310,2.5224\r\n")


class RankCursorPagination(IdCursorPagination):
    ordering = "rank"


def targeting_list_or_404(id: int) -> TargetingList:  # noqa: A002 - the path parameter's name
    return get_object_or_404(TargetingList.objects.select_related("campaign", "segment"), pk=id)


class CampaignTargetingListView(ListView):
    permission_model = TargetingList
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
                         .select_related("campaign", "segment").defer("profit_curve"))

    @extend_schema(
        tags=["targeting"], summary="Choose whom to contact, from a model's scores",
        description="Ranks the scored customers with marketing consent (in the segment, if "
                    "given) by expected profit, uplift × value_per_conversion − "
                    "cost_per_contact, and keeps the profitable ones within the budget and "
                    "max_contacts. Omitted values come from the campaign; the model version "
                    "defaults to the campaign's champion uplift model (400 if it has none).",
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
        target = targeting_list_create(campaign=campaign, model_version=version,
                                       segment=segment, **data)
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
    pagination_class = RankCursorPagination
    serializer_class = s.TargetingEntrySerializer

    @extend_schema(
        tags=["targeting"], summary="The list's customers by rank, best first",
        parameters=[TARGET_LIST_ID],
        responses={200: s.TargetingEntrySerializer(many=True), **error_responses(404)},
        examples=[OpenApiExample("Entry", response_only=True, value={
            "rank": 1, "customer": "crm-1001", "arm": "email", "uplift": 0.0812,
            "expected_profit": 3.198})],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        target = get_object_or_404(TargetingList, pk=id)
        return self.list(request, TargetingEntry.objects.filter(targeting_list=target)
                         .select_related("customer"))


class TargetingListCsvView(GenericAPIView):
    permission_model = TargetingList

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
            "predicted_uplift, expected_profit",
            examples=[OpenApiExample("CSV", value=CSV_EXAMPLE, response_only=True)]),
            **error_responses(404)},
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        target = get_object_or_404(TargetingList, pk=id)
        response = StreamingHttpResponse(targeting_list_csv(target),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="targeting-list-{target.id}.csv"'
        return response
