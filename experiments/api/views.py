"""Experiments: create, start, stop; assignment; exposures; conversions; tasks;
analysis results; model versions, training and scores; targeting lists.

Each view: check the shape with a serializer, call a service, serialise.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api.backpressure import task_queue_limited
from core.api.errors import RowsRejected
from core.api.pagination import NewestFirstCursorPagination
from core.api.permissions import RUN_TASKS
from core.api.schema import bulk_error_responses, error_responses
from core.api.serializers import TaskRunSerializer
from core.api.views import ListView, queued, queued_example
from core.audit import audit_record, audit_target
from experiments.api import serializers as s
from experiments.assignment import assign_customers, assign_external_id, live_experiment
from experiments.models import AnalysisResult, Assignment, Experiment, Exposure
from experiments.outcomes import outcome_sums
from experiments.services import (
    ArmSpec,
    MetricSpec,
    conversions_record,
    experiment_create,
    experiment_transition,
    exposures_record,
)
from jobs.requests import (
    experiment_analyse_request,
)
from marketing.api.views import (
    EXTERNAL_ID,
)
from marketing.models import Campaign, Event, Segment
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
    write_permission = "add"
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

    @transaction.atomic
    def post(self, request, key: str):
        experiment = experiment_transition(experiment=experiment_or_404(key), to=self.to)
        audit_record("start" if self.to == Experiment.Status.RUNNING else "stop",
                     audit_target(experiment), request=request, detail={"status": self.to})
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
        try:
            experiment = live_experiment(key)
        except Experiment.DoesNotExist:
            raise Http404 from None
        external_id = body.validated_data["customer"]
        decision = assign_external_id(experiment=experiment, external_id=external_id)
        if decision is None:
            raise ValidationError({"customer": ["no customer with this external_id"]})
        return Response(_decision(external_id, decision.arm, decision.reason, decision.created))


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
    write_permission = RUN_TASKS
    serializer_class = TaskRunSerializer

    @extend_schema(
        tags=["analysis"], summary="Analyse the experiment in the background",
        description="Queues a snapshot of the analysis: per-arm effects of every metric, the "
                    "sample-ratio check and the ship / stop / keep_running decision. Poll "
                    "GET /api/v1/tasks/{id}/; its result names the `analysis_result_id`, "
                    "which is then the newest of the experiment's results.",
        parameters=[EXPERIMENT_KEY], request=None,
        responses={202: TaskRunSerializer, **error_responses(404)},
        examples=[queued_example("experiment_analyse", {"experiment_id": 12})],
    )
    @transaction.atomic
    def post(self, request, key: str):
        experiment = experiment_or_404(key)
        run = task_queue_limited(request,
                                 lambda: experiment_analyse_request(experiment=experiment))
        return queued(run, request)


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


