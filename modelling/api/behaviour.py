"""Behaviour scores (churn risk, expected revenue) and learned segments over the API.

Kept apart from modelling.api.views: the same thin shape (check the input
with a serializer, call jobs.requests or a service, serialise).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api.backpressure import task_queue_limited
from core.api.pagination import NewestFirstCursorPagination
from core.api.permissions import RUN_TASKS
from core.api.schema import error_responses
from core.api.serializers import TaskRunSerializer
from core.api.views import ListView, queued, queued_example
from core.audit import audit_record
from experiments.models import Experiment
from jobs.requests import behaviour_model_train_request, segmentation_run_request
from marketing.api.views import CAMPAIGN_KEY, EXTERNAL_ID, customer_or_404
from marketing.models import Campaign, CustomerPrediction, Segment
from modelling.behaviour_training import CHURN_CANDIDATES
from modelling.models import CustomerScore, SegmentationRun, SegmentCluster
from modelling.segmentation import customer_cluster, segment_cluster_save

RUN_ID = OpenApiParameter("id", int, OpenApiParameter.PATH,
                          description="The segmentation run's id.",
                          examples=[OpenApiExample("Segmentation run", value=3)])
CLUSTER_INDEX = OpenApiParameter("index", int, OpenApiParameter.PATH,
                                 description="The cluster's index within the run.",
                                 examples=[OpenApiExample("Cluster", value=0)])


# --- Serializers ----------------------------------------------------------------

class BehaviourTrainInSerializer(serializers.Serializer):
    target = serializers.ChoiceField(choices=["churn", "value"], help_text=(
        "churn: no purchase in the horizon; value: revenue in it (hurdle model)."))
    horizon_days = serializers.IntegerField(min_value=7, max_value=365, default=90)
    candidates = serializers.ListField(
        child=serializers.ChoiceField(choices=list(CHURN_CANDIDATES)), required=False,
        default=list(CHURN_CANDIDATES), min_length=1,
        help_text="Churn candidates trained side by side; the best held-out AUC is champion.")
    model_params = serializers.DictField(required=False, default=dict,
                                         help_text="candidate -> hyperparameters.")


class PredictionSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")

    class Meta:
        model = CustomerPrediction
        fields = ["customer", "name", "value", "model_version_id", "scored_at"]


class PredictionFilterSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=CustomerPrediction.Name.values,
                                   help_text="Which score to list.")
    min_value = serializers.FloatField(required=False, help_text="value >= this")
    max_value = serializers.FloatField(required=False, help_text="value <= this")

    def filter(self, queryset):
        data = self.validated_data
        queryset = queryset.filter(name=data["name"])
        if "min_value" in data:
            queryset = queryset.filter(value__gte=data["min_value"])
        if "max_value" in data:
            queryset = queryset.filter(value__lte=data["max_value"])
        return queryset


class SegmentationInSerializer(serializers.Serializer):
    experiment = serializers.SlugField(required=False, allow_null=True, default=None,
                                       help_text="Key of the campaign's experiment, for "
                                                 "per-arm effects in the profiles.")
    k_min = serializers.IntegerField(min_value=2, max_value=20, default=2)
    k_max = serializers.IntegerField(min_value=2, max_value=20, default=8)
    cutoff = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                       help_text="Describe customers as of this time; "
                                                 "default now.")

    def validate(self, data):
        if data["k_min"] > data["k_max"]:
            raise ValidationError({"k_max": "must be at least k_min"})
        return data


class SegmentClusterSerializer(serializers.ModelSerializer):
    segment = serializers.CharField(source="segment.key", allow_null=True, default=None)

    class Meta:
        model = SegmentCluster
        fields = ["index", "size", "profile", "segment"]


class SegmentationRunSerializer(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.key")
    experiment = serializers.CharField(source="experiment.key", allow_null=True, default=None)
    clusters = SegmentClusterSerializer(many=True, read_only=True)

    class Meta:
        model = SegmentationRun
        fields = ["id", "campaign", "experiment", "cutoff", "status", "status_reason",
                  "k_min", "k_max", "k", "k_scores", "embedding", "comparison", "customers",
                  "created_at", "clusters"]


class ClusterSaveInSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=64, help_text="The new segment's key.")
    name = serializers.CharField(max_length=128, help_text="The new segment's name.")


class CustomerClusterSerializer(serializers.Serializer):
    customer = serializers.CharField()
    segmentation_run = serializers.IntegerField()
    cluster = serializers.IntegerField(allow_null=True)
    segment = serializers.CharField(allow_null=True)


PREDICTION_EXAMPLE = {"customer": "crm-1001", "name": "churn_risk", "value": 0.82,
                      "model_version_id": 12, "scored_at": "2026-06-16T03:00:00Z"}
RUN_EXAMPLE = {
    "id": 3, "campaign": "summer_email", "experiment": "summer_test",
    "cutoff": "2026-06-01T00:00:00Z", "status": "ready", "status_reason": "", "k_min": 3,
    "k_max": 8, "k": 5, "k_scores": {"3": 0.21, "4": 0.24, "5": 0.27},
    "embedding": "autoencoder",
    "comparison": {"criterion": "common_silhouette", "chosen": "autoencoder",
                   "candidates": {"autoencoder": {"k": 5, "silhouette": 0.27,
                                                  "common_silhouette": 0.17,
                                                  "churn_probe_auc": 0.81}}},
    "customers": 20000, "created_at": "2026-06-16T03:00:00Z",
    "clusters": [{"index": 0, "size": 4120, "segment": None, "profile": {
        "size": 4120, "share": 0.206, "conversion_90d": 0.12, "revenue_90d": 8.4,
        "churn_risk": 0.74, "distinguishing": [{"feature": "visits_30d", "cluster": 4.1,
                                                "rest": 1.2, "difference": 1.3}]}}]}


# --- Behaviour scores ---------------------------------------------------------------

class CampaignTrainBehaviourView(GenericAPIView):
    permission_model = Campaign
    write_permission = RUN_TASKS
    serializer_class = BehaviourTrainInSerializer

    @extend_schema(
        tags=["models"], summary="Train churn-risk or expected-revenue models in the background",
        description="Trained on the period before the last horizon, graded on the last one; "
                    "the champion then scores every customer. The task's result names the "
                    "versions, the champion and (churn) the side-by-side comparison.",
        parameters=[CAMPAIGN_KEY], request=BehaviourTrainInSerializer,
        responses={202: TaskRunSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample("Request", request_only=True,
                                 value={"target": "churn", "horizon_days": 90}),
                  queued_example("behaviour_model_train", {
                      "campaign_id": 4, "target": "churn", "horizon_days": 90,
                      "candidates": list(CHURN_CANDIDATES), "model_params": {}})],
    )
    @transaction.atomic
    def post(self, request, key: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        campaign = get_object_or_404(Campaign, key=key)
        run = task_queue_limited(request, lambda: behaviour_model_train_request(
            campaign=campaign, **body.validated_data))
        return queued(run, request)


class PredictionListView(ListView):
    permission_model = CustomerScore
    serializer_class = PredictionSerializer
    filter_class = PredictionFilterSerializer

    @extend_schema(
        tags=["scores"], summary="Every customer's churn risk or expected revenue (bulk)",
        description="The champion churn and value models' latest scores, by customer id.",
        parameters=[PredictionFilterSerializer],
        responses={200: PredictionSerializer(many=True), **error_responses(400)},
        examples=[OpenApiExample("Prediction", value=PREDICTION_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return self.list(request, CustomerPrediction.objects.select_related("customer"))


class CustomerPredictionsView(ListView):
    permission_model = CustomerScore
    pagination_class = NewestFirstCursorPagination
    serializer_class = PredictionSerializer

    @extend_schema(
        tags=["scores"], summary="A customer's churn risk and expected revenue",
        parameters=[EXTERNAL_ID],
        responses={200: PredictionSerializer(many=True), **error_responses(404)},
        examples=[OpenApiExample("Prediction", value=PREDICTION_EXAMPLE, response_only=True)],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        return self.list(request, CustomerPrediction.objects.filter(customer=customer)
                         .select_related("customer"))


# --- Learned segments -----------------------------------------------------------------

class CampaignSegmentationView(GenericAPIView):
    permission_model = Campaign
    write_permission = RUN_TASKS
    serializer_class = SegmentationInSerializer

    @extend_schema(
        tags=["segments"], summary="Learn behavioural segments in the background",
        description="Embeds customers (autoencoder or sequence model, picked by the "
                    "silhouette of their clusters on the standardised features), clusters them with k chosen by silhouette in [k_min, k_max] "
                    "and profiles each cluster.",
        parameters=[CAMPAIGN_KEY], request=SegmentationInSerializer,
        responses={202: TaskRunSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample("Request", request_only=True, value={"k_min": 3, "k_max": 8}),
                  queued_example("segmentation_run", {"segmentation_run_id": 3,
                                                      "model_params": {}})],
    )
    @transaction.atomic
    def post(self, request, key: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        campaign = get_object_or_404(Campaign, key=key)
        data = dict(body.validated_data)
        experiment_key = data.pop("experiment")
        experiment = None
        if experiment_key:
            experiment = Experiment.objects.filter(key=experiment_key).first()
            if experiment is None:
                raise ValidationError({"experiment": f"no experiment {experiment_key!r}"})
        try:
            run = task_queue_limited(request, lambda: segmentation_run_request(
                campaign=campaign, experiment=experiment, **data))
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return queued(run, request)


class SegmentationRunListView(ListView):
    permission_model = SegmentationRun
    pagination_class = NewestFirstCursorPagination
    serializer_class = SegmentationRunSerializer

    @extend_schema(
        tags=["segments"], summary="Segmentation runs with their clusters, newest first",
        responses={200: SegmentationRunSerializer(many=True), **error_responses()},
        examples=[OpenApiExample("Run", value=RUN_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return self.list(request, SegmentationRun.objects.select_related(
            "campaign", "experiment").prefetch_related("clusters__segment"))


class SegmentationRunDetailView(GenericAPIView):
    permission_model = SegmentationRun
    serializer_class = SegmentationRunSerializer

    @extend_schema(
        tags=["segments"], summary="One segmentation run, its clusters and their profiles",
        parameters=[RUN_ID], responses={200: SegmentationRunSerializer, **error_responses(404)},
        examples=[OpenApiExample("Run", value=RUN_EXAMPLE, response_only=True)],
    )
    def get(self, request, id: int):  # noqa: A002 - the path parameter's name
        run = get_object_or_404(SegmentationRun.objects.select_related("campaign", "experiment"),
                                pk=id)
        return Response(self.get_serializer(run).data)


class CustomerClusterView(GenericAPIView):
    permission_model = SegmentationRun
    serializer_class = CustomerClusterSerializer

    @extend_schema(
        tags=["segments"], summary="A customer's cluster in a segmentation run",
        description="cluster is null when the run has not placed the customer yet.",
        parameters=[RUN_ID, EXTERNAL_ID],
        responses={200: CustomerClusterSerializer, **error_responses(404)},
        examples=[OpenApiExample("Cluster", response_only=True, value={
            "customer": "crm-1001", "segmentation_run": 3, "cluster": 2,
            "segment": "learned_bargain_hunters"})],
    )
    def get(self, request, id: int, external_id: str):  # noqa: A002
        run = get_object_or_404(SegmentationRun, pk=id)
        customer = customer_or_404(external_id)
        index = customer_cluster(run, customer)
        cluster = run.clusters.filter(index=index).select_related("segment").first() \
            if index is not None else None
        return Response({"customer": customer.external_id, "segmentation_run": run.id,
                         "cluster": index,
                         "segment": cluster.segment.key if cluster and cluster.segment else None})


class ClusterSaveView(GenericAPIView):
    permission_model = Segment
    write_permission = "add"
    serializer_class = ClusterSaveInSerializer

    @extend_schema(
        tags=["segments"], summary="Save a cluster as a segment",
        description="The segment's rule is membership of this cluster of this run; new "
                    "customers join by the run's nearest centre.",
        parameters=[RUN_ID, CLUSTER_INDEX], request=ClusterSaveInSerializer,
        responses={201: SegmentClusterSerializer, **error_responses(400, 404)},
        examples=[OpenApiExample("Request", request_only=True,
                                 value={"key": "learned_bargain_hunters",
                                        "name": "Bargain hunters (learned)"}),
                  OpenApiExample("Saved", response_only=True, status_codes=[201], value={
                      "index": 2, "size": 4120, "profile": {}, "segment":
                      "learned_bargain_hunters"})],
    )
    def post(self, request, id: int, index: int):  # noqa: A002
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        cluster = get_object_or_404(SegmentCluster.objects.select_related("run", "segment"),
                                    run_id=id, index=index)
        if Segment.objects.filter(key=body.validated_data["key"]).exists():
            raise ValidationError({"key": "a segment with this key exists"})
        try:
            with transaction.atomic():
                segment = segment_cluster_save(cluster=cluster, **body.validated_data)
                audit_record("create", f"segment {segment.id}", request=request,
                             detail={"from": f"cluster {index} of segmentation run {id}"})
        except ValueError as exc:
            raise ValidationError({"index": str(exc)}) from None
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        cluster.refresh_from_db()
        return Response(SegmentClusterSerializer(cluster).data, status=status.HTTP_201_CREATED)
