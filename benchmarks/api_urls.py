"""The project's URLs plus the bare Django baselines that benchmarks/api.py compares with.

``/bench/assign/<key>/`` does what POST /api/v1/experiments/<key>/assignments/
does (same lookups, same assign_external_id call) with none of the API layer:
no DRF, authentication, permission, throttle, parser or serializer. The
ratio of the two is the price of that layer. ``/bench/hello/`` is Django
returning a constant, for scale.
"""

import json

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as project_urlpatterns
from experiments.assignment import assign_external_id, live_experiment


@csrf_exempt
def bare_assign(request, key):
    customer_id = json.loads(request.body)["customer"]
    experiment = live_experiment(key)
    decision = assign_external_id(experiment=experiment, external_id=customer_id)
    arm = decision.arm
    return JsonResponse({"customer": customer_id, "arm": arm.name if arm else None,
                         "reason": decision.reason,
                         "contacts_customer": arm.contacts_customer if arm else None,
                         "created": decision.created})


@csrf_exempt
def bare_hello(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    *project_urlpatterns,
    path("bench/assign/<slug:key>/", bare_assign),
    path("bench/hello/", bare_hello),
]
