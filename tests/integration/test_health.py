"""/health/ against a real broker and worker: 200 with the worker counted."""

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_health_counts_the_running_worker(celery_worker_process, client):
    response = client.get("/health/")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert checks["database"]["detail"] == "postgresql"
    assert checks["broker"]["ok"] and checks["broker"]["detail"] == "redis"
    assert checks["worker"]["workers"] >= 1
    assert checks["worker"]["seconds"] < 2.0
