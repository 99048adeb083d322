"""Property-based fuzzing of every operation in the live schema: never a 5xx.

schemathesis loads /api/schema/ from the WSGI application in process and,
for each operation, sends the documented examples and then generated valid
and invalid requests with a write-scope key. The data the examples name
(customer crm-1001, experiment summer_email_ab, ...) exists, so the examples
exercise the success paths and generated requests the error paths.
"""

import os

import pytest
import schemathesis
from django.core.management.color import no_style
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from config.wsgi import application
from core.api_keys import api_key_create
from core.models import TaskRun
from experiments.api.views import RESULT_EXAMPLE
from experiments.assignment import assign_customer
from experiments.models import AnalysisResult, Experiment
from experiments.services import ArmSpec, MetricSpec, experiment_create, experiment_transition
from marketing.models import Customer, Event, Segment
from marketing.services import campaign_create
from modelling.api.views import MODEL_VERSION_EXAMPLE
from modelling.models import CustomerScore, ModelVersion, TargetingEntry, TargetingList
from tests.factories import T0, attributes_declare

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm_data(db):
    """The objects the schema's examples refer to."""
    attributes_declare()
    customers = [Customer.objects.create(external_id=e, marketing_consent=True,
                                         attributes={"age": 34, "channel": "web"})
                 for e in ("crm-1001", "crm-1002")]
    campaign = campaign_create(key="summer_email", name="Summer", channel="email",
                               cost_per_contact="0.05", value_per_conversion="40")
    Segment.objects.create(key="frequent_web", name="Web",
                           rule={"attr": "channel", "op": "eq", "value": "web"})
    experiment = experiment_create(
        campaign=campaign, key="summer_email_ab", name="Summer A/B",
        arms=[ArmSpec("control", 1, is_control=True, contacts_customer=False),
              ArmSpec("email", 1)],
        metrics=[MetricSpec("purchase", "purchase", "converted", role="primary")])
    experiment_transition(experiment=experiment, to=Experiment.Status.RUNNING)
    assign_customer(experiment=experiment, customer=customers[0])
    Event.objects.create(customer=customers[0], kind="purchase", occurred_at=T0, value=5)
    TaskRun.objects.create(id=42, name="segment_size", params={"segment_id": 1})
    AnalysisResult.objects.create(
        id=5, experiment=experiment, customers=1, decision="keep_running",
        decision_reasons=["Not enough customers yet."], srm_p_value=None,
        payload=RESULT_EXAMPLE["payload"])
    version = ModelVersion.objects.create(
        id=7, campaign=campaign, experiment=experiment, kind="uplift", estimator="tarnet",
        target_metric="purchase", status="ready", is_champion=True, selection_score=0.3,
        **{k: MODEL_VERSION_EXAMPLE[k] for k in ("params", "feature_spec", "metrics", "curves",
                                                 "artifact_sha256")})
    for customer, uplift in zip(customers, [0.08, -0.01], strict=True):
        CustomerScore.objects.create(model_version=version, customer=customer, uplift=uplift,
                                     best_arm="email", uplift_by_arm={"email": uplift},
                                     response=0.05, scored_at=T0)
    target = TargetingList.objects.create(
        id=3, campaign=campaign, model_version=version, size=1, total_cost=0.05,
        expected_profit=3.15, expected_conversions=0.08,
        parameters={"cost_per_contact": 0.05, "value_per_conversion": 40.0, "budget": None,
                    "max_contacts": None, "eligible": 2},
        profit_curve={"contacts": [0, 1], "profit": [0.0, 3.15]})
    TargetingEntry.objects.create(targeting_list=target, customer=customers[0], rank=1,
                                  arm="email", uplift=0.08, expected_profit=3.15)
    # Rows made with explicit ids leave PostgreSQL's sequences behind; rows the
    # requests create must not collide with them.
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(
                no_style(), [TaskRun, AnalysisResult, ModelVersion, TargetingList]):
            cursor.execute(sql)


@pytest.fixture
def fuzz_headers(crm_data):
    # As Django's test client does: a request must not close the test's
    # connection (it is inside the test transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    _, raw_key = api_key_create(name="fuzzer", scope="write")
    yield {"Authorization": f"Api-Key {raw_key}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Loading the schema only renders it: no database access at collection time.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.parametrize()
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20")), deadline=None, derandomize=not os.environ.get("FUZZ_EXAMPLES"), database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_operation_answers_with_a_server_error(case, fuzz_headers):
    response = case.call(headers=fuzz_headers)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
