"""An erased customer whose CRM id is an e-mail address leaves no trace of it anywhere.

The CRM pushes the customer, their purchases (idempotency keys built from
the address), an exposure, and reads them by URL; the models score and list
them; then the customer is erased. Every table of the database is read
whole, and the log lines of every request: neither the address nor its
parts appear. The analyses are the same as before the erasure.
"""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from core.log_privacy import CustomerIdLogFilter
from core.models import AuditEntry
from experiments.assignment import assign_customer, assign_customers
from experiments.models import Experiment
from experiments.outcomes import outcome_sums
from experiments.services import experiment_transition
from marketing.models import ConsentChange, Customer, CustomerAttribute
from modelling.models import CustomerScore, ModelVersion, TargetingEntry, TargetingList
from tests.factories import T0, experiment_make

pytestmark = pytest.mark.django_db

EMAIL = "Alice.Liddell@wonderland-post.test"
NEEDLES = ["alice.liddell@wonderland-post.test", "alice.liddell", "liddell", "alice",
           "wonderland-post", "alice.liddell%40", quote(EMAIL).lower()]


@pytest.fixture
def log_lines():
    """What the platform's log handlers write: the handler carries the settings' filter."""
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["customer_ids"]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(CustomerIdLogFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)


def database_dump() -> str:
    """Every row of every table as text (binary columns decoded byte for byte)."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes):
                        value = bytes(value).decode("latin-1")
                    parts.append(str(value))
    return "\n".join(parts).lower()


def test_erasure_leaves_the_address_in_no_table_and_no_log_line(privacy, reader, log_lines):
    CustomerAttribute.objects.create(key="email", kind="categorical", is_personal=True)
    experiment = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)
    api = privacy
    assert api.post("/api/v1/customers/", {"external_id": EMAIL, "marketing_consent": True,
                                           "attributes": {"age": 40, "email": EMAIL}},
                    format="json").status_code == 201
    customer = Customer.objects.get(external_id=EMAIL)
    assign_customer(experiment=experiment, customer=customer, now=T0)
    events = [{"customer": EMAIL, "kind": "purchase", "value": 30.0,
               "occurred_at": (T0).isoformat(), "idempotency_key": f"order-{EMAIL}-{i}",
               "properties": {"email": EMAIL}} for i in range(2)]
    assert api.post("/api/v1/events/bulk/", {"source": "shop", "events": events},
                    format="json").json() == {"created": 2, "duplicates": 0}
    exposure = {"customer": EMAIL, "exposed_at": T0.isoformat(),
                "idempotency_key": f"send-{EMAIL}"}
    assert api.post(f"/api/v1/experiments/{experiment.key}/exposures/",
                    {"exposures": [exposure]}, format="json").status_code == 200
    version = ModelVersion.objects.create(
        campaign=experiment.campaign, experiment=experiment, kind="uplift", estimator="tarnet",
        target_metric="purchase", status="ready")
    CustomerScore.objects.create(model_version=version, customer=customer, uplift=0.1,
                                 best_arm="email", uplift_by_arm={"email": 0.1}, scored_at=T0)
    target = TargetingList.objects.create(campaign=experiment.campaign, model_version=version)
    TargetingEntry.objects.create(targeting_list=target, customer=customer, rank=1, arm="email",
                                  uplift=0.1, expected_profit=1.0)
    # An admin log entry written before customers were named by row id.
    LogEntry.objects.create(content_type=ContentType.objects.get_for_model(Customer),
                            object_id=str(customer.pk), object_repr=EMAIL, action_flag=CHANGE,
                            user_id=_staff_user().pk)
    # Requests naming the customer in their URL, logged by Django (403) and gunicorn.
    assert reader.get(f"/api/v1/customers/{quote(EMAIL)}/export/").status_code == 403
    assert api.get(f"/api/v1/customers/{quote(EMAIL)}/scores/").status_code == 200
    logging.getLogger("gunicorn.access").info(
        '%(h)s "%(r)s" %(s)s', {"h": "10.0.0.7", "r": f"GET /api/v1/customers/{quote(EMAIL)}"
                                "/scores/ HTTP/1.1", "s": "200"})
    logging.getLogger("gunicorn.access").info(
        '%(h)s "%(r)s" %(s)s', {"h": "10.0.0.7", "r": f"GET /api/v1/events/?customer="
                                f"{quote(EMAIL)}&kind=purchase HTTP/1.1", "s": "200"})
    before = outcome_sums(experiment)
    assert NEEDLES[0] in database_dump()  # the dump does see it while it is there

    response = api.post(f"/api/v1/customers/{quote(EMAIL)}/erase/")
    assert response.status_code == 200, response.content
    # The CRM's id still finds the customer afterwards (hashed on the way in).
    assert api.get(f"/api/v1/customers/{quote(EMAIL)}/export/").status_code == 200

    assert outcome_sums(experiment) == before
    dump = database_dump()
    log = log_lines.getvalue().lower()
    assert "/api/v1/customers/~" in log and "customer=~" in log  # the lines are there
    for needle in NEEDLES:
        assert needle not in dump, f"{needle!r} is still in the database"
        assert needle not in log, f"{needle!r} is in the log"
    customer.refresh_from_db()
    assert customer.external_id.startswith("erased:")
    assert not CustomerScore.objects.filter(customer=customer).exists()
    assert not TargetingEntry.objects.filter(customer=customer).exists()
    assert customer.marketing_consent is False
    assert ConsentChange.objects.filter(customer=customer).latest("id").source == "erasure"
    audit = list(AuditEntry.objects.filter(action__in=["erase", "export"])
                 .values_list("action", "target"))
    pseudonym = customer.external_id.removeprefix("erased:")
    assert audit and all(target == f"customer pseudonym {pseudonym}" for _, target in audit)
    assert {action for action, _ in audit} == {"erase", "export"}


def test_an_erased_customer_is_never_assigned_scored_or_listed_again(privacy):
    CustomerAttribute.objects.create(key="email", kind="categorical", is_personal=True)
    old = experiment_transition(experiment=experiment_make(), to=Experiment.Status.RUNNING)
    privacy.post("/api/v1/customers/", {"external_id": EMAIL, "marketing_consent": True},
                 format="json")
    customer = Customer.objects.get(external_id=EMAIL)
    assert assign_customer(experiment=old, customer=customer, now=T0).arm is not None
    assert privacy.post(f"/api/v1/customers/{quote(EMAIL)}/erase/").status_code == 200
    customer.refresh_from_db()

    new = experiment_transition(experiment=experiment_make(traffic_fraction=1.0),
                                to=Experiment.Status.RUNNING)
    decision = assign_customer(experiment=new, customer=customer)
    assert (decision.arm, decision.reason) == (None, "the customer's personal data was erased")
    assert assign_customers(experiment=new, external_ids=[EMAIL]).rejected
    assert not new.assignments.exists()
    assert privacy.get(f"/api/v1/customers/{quote(EMAIL)}/scores/").json()["results"] == []
    # A later sync finds the erased row: no new person, no consent, no personal data.
    response = privacy.post("/api/v1/customers/bulk/", {"customers": [
        {"external_id": EMAIL, "marketing_consent": True, "attributes": {"email": EMAIL}}]},
        format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["rows"][0]["errors"]) == {"attributes",
                                                                  "marketing_consent"}
    assert Customer.objects.count() == 1


def _staff_user():
    from django.contrib.auth.models import User

    return User.objects.create_user("dpo", password="x", is_staff=True)
