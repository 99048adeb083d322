"""Input and output shapes of the model, score and targeting-list endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.bounds import (
    AMOUNT_MAX,
    BUDGET_MAX,
    COUNT_MAX,
    HYPERPARAMETER_MAX,
    number_in_range,
    range_text,
)
from marketing.models import Event
from modelling.followup import follow_up_summary
from modelling.models import (
    CustomerScore,
    ModelVersion,
    TargetingEntry,
    TargetingFollowUp,
    TargetingList,
)
from models_dl import available_estimators
from models_dl.registry import make_estimator

# --- Model versions ------------------------------------------------------------

ID_MAX = 10**18 - 1  # as core.api.converters.Id64Converter


class ModelVersionSummarySerializer(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.key")
    experiment = serializers.SerializerMethodField(
        help_text="Key of the experiment it was trained on (uplift models).")
    # Strings, not enums: the enum names "kind" and "status" are taken by other choice
    # sets, and naming these needs SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].
    kind = serializers.CharField(help_text="uplift, response, churn or value.")
    status = serializers.CharField(help_text=(
        "training, ready, rejected (by the sanity checks; see status_reason) or failed."))

    class Meta:
        model = ModelVersion
        fields = ["id", "campaign", "experiment", "kind", "estimator", "target_metric",
                  "status", "selection_score", "is_champion", "rows_train", "rows_validation",
                  "rows_test", "training_seconds", "created_at"]

    def get_experiment(self, version: ModelVersion) -> str | None:
        return version.experiment.key if version.experiment_id else None


class ModelVersionSerializer(ModelVersionSummarySerializer):
    params = serializers.DictField(help_text="Hyperparameters the estimator was built with.")
    feature_spec = serializers.DictField(help_text="The point-in-time features it reads.")
    metrics = serializers.DictField(help_text=(
        "Held-out quality. Uplift: arms -> {qini, auuc, uplift_at_30, sqrt_pehe}, mean, "
        "baselines (causalml on the same split), arm_names, calibration. Response: roc_auc, "
        "calibration figures."))
    curves = serializers.DictField(help_text="Qini curve points per arm: {x: [...], qini: [...]}.")
    explanations = serializers.DictField(help_text=(
        "Why it predicts what it does, on up to 2,000 held-out customers (uplift models; "
        "empty for others): method, n_rows, unit, arm_names, labels (feature -> words), "
        "drivers (ranking: arm -> [[feature, importance], ...], most important first; "
        "baseline_uplift), baseline (the network's reference row), rules (cost_per_contact "
        "and value_per_conversion they were fitted at, max_depth, text: one line per rule, "
        "rules: conditions, action_name, share, mean_uplift, mean_profit, value_share: "
        "predicted and, for simulated data, true: the share of the model policy's value the "
        "rules keep), or error when they could not be computed."))
    task_run = serializers.IntegerField(source="task_run_id", allow_null=True)

    class Meta(ModelVersionSummarySerializer.Meta):
        fields = ["id", "campaign", "experiment", "kind", "estimator", "target_metric",
                  "status", "status_reason", "selection_score", "is_champion", "rows_train",
                  "rows_validation", "rows_test", "training_seconds", "created_at", "params",
                  "feature_spec", "metrics", "curves", "explanations", "artifact_sha256",
                  "task_run"]


class ModelVersionFilterSerializer(serializers.Serializer):
    campaign = serializers.SlugField(required=False, max_length=64, help_text="Campaign key.")
    experiment = serializers.SlugField(required=False, max_length=64,
                                       help_text="Experiment key.")
    kind = serializers.ChoiceField(choices=ModelVersion.Kind.choices, required=False)
    status = serializers.ChoiceField(choices=ModelVersion.Status.choices, required=False)
    champion = serializers.BooleanField(required=False, allow_null=True, default=None,
                                        help_text="true: only champions; false: only others.")

    def filter(self, queryset):
        data = self.validated_data
        if "campaign" in data:
            queryset = queryset.filter(campaign__key=data["campaign"])
        if "experiment" in data:
            queryset = queryset.filter(experiment__key=data["experiment"])
        for name in ("kind", "status"):
            if name in data:
                queryset = queryset.filter(**{name: data[name]})
        if data.get("champion") is not None:
            queryset = queryset.filter(is_champion=data["champion"])
        return queryset


class UpliftTrainInSerializer(serializers.Serializer):
    estimators = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=10,
        default=["default"], help_text="Deep uplift estimators to train, one version each.")
    baselines = serializers.ListField(
        child=serializers.CharField(max_length=16), max_length=6, default=["X"],
        help_text="causalml meta-learners fitted on the same split for comparison: "
                  "S, T, X, R, DR, CausalForest.")
    metric = serializers.CharField(max_length=64, required=False, allow_null=True,
                                   default=None, help_text="Default: the primary metric.")
    estimator_params = serializers.DictField(
        child=serializers.DictField(), required=False, default=dict,
        help_text="Hyperparameters by estimator name, e.g. {\"tarnet\": {\"max_epochs\": 50}}.")
    random_state = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)

    def validate(self, data):
        stray = sorted(set(data["estimator_params"]) - set(data["estimators"]))
        if stray:
            raise serializers.ValidationError(
                {"estimator_params": [f"not among the estimators: {', '.join(stray)}"]})
        for name, params in data["estimator_params"].items():
            hyperparameters_check(params, f"estimator_params.{name}")
            if name in available_estimators():
                try:  # __init__ only stores: refuses unknown names before a worker is used
                    make_estimator(name, **params)
                except (TypeError, ValueError) as error:
                    raise serializers.ValidationError(
                        {f"estimator_params.{name}": [str(error)]}) from None
        return data


def hyperparameters_check(params: dict, path: str) -> None:
    """Every number among the hyperparameters within ±HYPERPARAMETER_MAX (core.bounds)."""
    for key, value in params.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and \
                number_in_range(value, -HYPERPARAMETER_MAX, HYPERPARAMETER_MAX) is None:
            raise serializers.ValidationError({f"{path}.{key}": [
                f"must be {range_text(-HYPERPARAMETER_MAX, HYPERPARAMETER_MAX)}"]})


class ResponseTrainInSerializer(serializers.Serializer):
    event_kind = serializers.ChoiceField(choices=Event.Kind.choices, default=Event.Kind.PURCHASE,
                                         help_text="The event the model predicts.")
    window_days = serializers.IntegerField(min_value=1, max_value=365, default=30,
                                           help_text="Predict the event within this many days.")
    model_params = serializers.DictField(required=False, default=dict,
                                         help_text="Hyperparameters of the classifier.")

    def validate(self, data):
        hyperparameters_check(data["model_params"], "model_params")
        return data


class ScoreInSerializer(serializers.Serializer):
    segment = serializers.SlugField(max_length=64, required=False, allow_null=True, default=None,
                                    help_text="Key of a segment: score only its members.")


# --- Customer scores -----------------------------------------------------------

class CustomerScoreSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    uplift_by_arm = serializers.DictField(child=serializers.FloatField(),
                                          help_text="Predicted effect of each arm vs control.")

    class Meta:
        model = CustomerScore
        fields = ["customer", "uplift", "best_arm", "uplift_by_arm", "response", "scored_at"]
        extra_kwargs = {
            "uplift": {"help_text": "Predicted effect of the best arm (uplift models)."},
            "response": {"help_text": "Predicted probability of converting (response models; "
                                      "uplift models: without contact)."},
        }


class CustomerScoreFilterSerializer(serializers.Serializer):
    min_uplift = serializers.FloatField(required=False, help_text="uplift >= this")

    def filter(self, queryset):
        if "min_uplift" in self.validated_data:
            queryset = queryset.filter(uplift__gte=self.validated_data["min_uplift"])
        return queryset


class CustomerModelScoreSerializer(CustomerScoreSerializer):
    model_version = serializers.IntegerField(source="model_version_id")
    kind = serializers.CharField(source="model_version.kind")
    campaign = serializers.CharField(source="model_version.campaign.key")
    is_champion = serializers.BooleanField(source="model_version.is_champion")

    class Meta(CustomerScoreSerializer.Meta):
        fields = ["model_version", "kind", "campaign", "is_champion", "uplift", "best_arm",
                  "uplift_by_arm", "response", "scored_at"]


# --- Customer explanations -------------------------------------------------------

class CustomerExplanationQuerySerializer(serializers.Serializer):
    model_version = serializers.IntegerField(
        min_value=1, max_value=ID_MAX, required=False, allow_null=True, default=None,
        help_text="Id of a ready uplift model version; default: the campaign's champion.")
    campaign = serializers.SlugField(
        max_length=64, required=False, allow_null=True, default=None,
        help_text="Campaign key, for its champion uplift model; may be left out when only "
                  "one campaign has one.")


class FeatureReasonSerializer(serializers.Serializer):
    feature = serializers.CharField(help_text="The feature's name in the model's feature spec.")
    label = serializers.CharField(help_text="The feature in words.")
    value = serializers.JSONField(allow_null=True, help_text="The customer's value.")
    contribution = serializers.FloatField(
        help_text="How much it moves the customer's uplift from the baseline (signed).")


class ArmExplanationSerializer(serializers.Serializer):
    arm = serializers.CharField()
    uplift = serializers.FloatField(help_text="Predicted effect of the arm against control.")
    expected_profit = serializers.FloatField(
        help_text="uplift × value_per_conversion − cost_per_contact.")
    baseline_uplift = serializers.FloatField(
        allow_null=True, help_text="Uplift of the average held-out customer.")
    other = serializers.FloatField(allow_null=True,
                                   help_text="Sum of the contributions of the other features.")
    features = FeatureReasonSerializer(many=True, help_text=(
        "The five features pushing the uplift most, up (+) or down (−), largest first; "
        "baseline_uplift + contributions + other = uplift."))


class RuleConditionSerializer(serializers.Serializer):
    feature = serializers.CharField()
    op = serializers.CharField(help_text="<=, >, is or is not.")
    value = serializers.JSONField()


class CoveringRuleSerializer(serializers.Serializer):
    text = serializers.CharField()
    action = serializers.CharField(help_text="The arm the rule gives, or no contact.")
    conditions = RuleConditionSerializer(many=True)


class ScoreCheckSerializer(serializers.Serializer):
    best_arm = serializers.CharField()
    uplift_by_arm = serializers.DictField(child=serializers.FloatField())
    scored_at = serializers.DateTimeField()
    consistent = serializers.BooleanField(
        help_text="The stored score names the same best arm and the same uplift per arm.")
    note = serializers.CharField(allow_blank=True)


class CustomerExplanationSerializer(serializers.Serializer):
    customer = serializers.CharField()
    model_version = serializers.IntegerField()
    campaign = serializers.CharField()
    as_of = serializers.DateTimeField(help_text="The time the customer's features are read at.")
    unit = serializers.CharField(help_text="What the uplift counts.")
    cost_per_contact = serializers.FloatField()
    value_per_conversion = serializers.FloatField()
    chosen_arm = serializers.CharField(
        help_text="The arm with the best expected profit, or \"no contact\" when none pays.")
    arms = ArmExplanationSerializer(many=True)
    rule = CoveringRuleSerializer(allow_null=True,
                                  help_text="The stored targeting rule that covers them.")
    score = ScoreCheckSerializer(allow_null=True, help_text="Their stored score, if scored.")
    notes = serializers.ListField(child=serializers.CharField(), help_text=(
        "What the reader should know: a stale score, rules fitted at other costs, ..."))


# --- Targeting lists -------------------------------------------------------------

class TargetingListInSerializer(serializers.Serializer):
    model_version = serializers.IntegerField(
        min_value=1, max_value=ID_MAX, required=False, allow_null=True, default=None,
        help_text="Id of an uplift model version of the campaign; default: its champion.")
    budget = serializers.FloatField(min_value=0, max_value=BUDGET_MAX, required=False,
                                    allow_null=True, default=None,
                                    help_text="Most to spend on contacts; default: the "
                                              "campaign's budget.")
    max_contacts = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False,
                                            allow_null=True, default=None)
    segment = serializers.SlugField(max_length=64, required=False, allow_null=True,
                                    default=None, help_text="Key of a segment to choose from.")
    cost_per_contact = serializers.FloatField(min_value=0, max_value=AMOUNT_MAX, required=False,
                                              allow_null=True, default=None,
                                              help_text="Default: the campaign's.")
    value_per_conversion = serializers.FloatField(min_value=0, max_value=AMOUNT_MAX,
                                                  required=False, allow_null=True, default=None,
                                                  help_text="Default: the campaign's.")
    arm_capacity = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=2**31 - 1), required=False,
        allow_null=True, default=None, help_text="Arm name -> most customers in that arm.")
    harm_prices = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=AMOUNT_MAX), required=False,
        allow_null=True,
        default=None, help_text="Event kind -> money per extra guardrail event; default: the "
                                "campaign's.")
    harm_caps = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=COUNT_MAX), required=False,
        allow_null=True,
        default=None, help_text="Event kind -> most extra guardrail events the list may be "
                                "expected to cause; default: the campaign's.")


class ProfitCurveSerializer(serializers.Serializer):
    contacts = serializers.ListField(child=serializers.IntegerField())
    profit = serializers.ListField(child=serializers.FloatField(),
                                   help_text="Expected profit of contacting the first n.")


@extend_schema_field(ProfitCurveSerializer)
class ProfitCurveField(serializers.JSONField):
    """The stored curve, returned unchanged (documented by ProfitCurveSerializer)."""


class TargetingListSummarySerializer(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.key")
    model_version = serializers.IntegerField(source="model_version_id")
    segment = serializers.SerializerMethodField()
    parameters = serializers.DictField(help_text=(
        "The inputs as used: cost_per_contact, value_per_conversion, budget, max_contacts, "
        "eligible (scored customers with consent), cost_per_contact_by_arm, "
        "cost_per_conversion_by_arm, arm_capacity, harm_prices and harm_caps (per guardrail "
        "metric)."))
    contacts_by_arm = serializers.DictField(child=serializers.IntegerField())
    guardrail_harm = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Per guardrail metric: the extra events the list is predicted to cause.")

    class Meta:
        model = TargetingList
        fields = ["id", "campaign", "model_version", "segment", "parameters", "size",
                  "total_cost", "expected_profit", "expected_conversions", "contacts_by_arm",
                  "guardrail_harm", "digest", "created_at"]

    def get_segment(self, target: TargetingList) -> str | None:
        return target.segment.key if target.segment_id else None


class TargetingListSerializer(TargetingListSummarySerializer):
    profit_curve = ProfitCurveField()
    evaluation = serializers.DictField(help_text=(
        "Held-out doubly robust evaluation on the experiment's test customers: per policy "
        "(uplift_policy, everyone_<arm>, random, response_top, no_one) contacts, spend, "
        "incremental conversions and profit with 95% intervals (value, se, low, high), the "
        "model's own prediction, guardrail harm, and the true profit where the experiment "
        "stores true effects; profit curves with interval bands overall and per arm."))

    class Meta(TargetingListSummarySerializer.Meta):
        fields = ["id", "campaign", "model_version", "segment", "parameters", "size",
                  "total_cost", "expected_profit", "expected_conversions", "contacts_by_arm",
                  "guardrail_harm", "digest", "profit_curve", "evaluation", "created_at"]


class TargetingEntrySerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    uplift_by_arm = serializers.DictField(
        child=serializers.FloatField(), allow_null=True,
        help_text="Predicted uplift of every arm (the model version's score of the customer; "
                  "null once the score is gone).")

    class Meta:
        model = TargetingEntry
        fields = ["rank", "customer", "arm", "uplift", "expected_profit", "uplift_by_arm"]


# --- Targeting follow-ups ----------------------------------------------------------

class FollowUpSharesSerializer(serializers.Serializer):
    policy = serializers.FloatField(min_value=0, max_value=1,
                                    help_text="Share sent as the policy says.")
    random = serializers.FloatField(min_value=0, max_value=1,
                                    help_text="Share sent the same contacts and offer mix "
                                              "at random.")
    holdout = serializers.FloatField(min_value=0, max_value=1,
                                     help_text="Share never contacted (the control).")


class FollowUpInSerializer(serializers.Serializer):
    shares = FollowUpSharesSerializer(required=False, allow_null=True, default=None,
                                      help_text="Positive, summing to 1; default 0.45 / "
                                                "0.45 / 0.10.")
    key = serializers.SlugField(max_length=64, required=False, allow_null=True, default=None,
                                help_text="The experiment's key; default followup_<list>_<hex>.")
    name = serializers.CharField(max_length=128, required=False, allow_null=True,
                                 default=None)
    start = serializers.BooleanField(required=False, default=False,
                                     help_text="Start now (assign the population); default: "
                                               "leave the experiment in draft.")


class FollowUpSerializer(serializers.ModelSerializer):
    targeting_list = serializers.IntegerField(source="targeting_list_id")
    experiment = serializers.CharField(source="experiment.key")
    status = serializers.CharField(source="experiment.status")
    shares = serializers.DictField(child=serializers.FloatField())
    plan = serializers.DictField(help_text=(
        "eligible, on_list, contact_rate, offer_mix (the policy over the population; the "
        "random group's draw), economics (value and costs the analysis charges), "
        "populated_at."))
    analysis = serializers.DictField(help_text=(
        "groups (customers, contacts, offers, profit, profit_per_customer) and policy_minus "
        "{random, holdout}: difference in profit per customer with se, ci_low, ci_high, "
        "p_value; empty until analysed."))
    summary = serializers.SerializerMethodField()

    class Meta:
        model = TargetingFollowUp
        fields = ["id", "targeting_list", "experiment", "status", "shares", "plan", "analysis",
                  "summary", "analysed_at", "created_at"]

    def get_summary(self, follow_up: TargetingFollowUp) -> str:
        return follow_up_summary(follow_up.analysis)


class FollowUpPlanEntrySerializer(serializers.Serializer):
    customer = serializers.CharField(source="customer_external_id")
    group = serializers.CharField()
    offer = serializers.CharField(allow_null=True, help_text="null: do not contact.")
