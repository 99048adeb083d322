from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api.errors import error_body
from core.health import health_view

urlpatterns = [
    path("admin/", admin.site.urls),
    # For load balancers and monitors: database, broker, worker; 200 or 503 (core.health).
    path("health/", health_view, name="health"),
    path("api/v1/", include("marketing.api.urls")),
    path("api/v1/", include("experiments.api.urls")),
    path("api/v1/", include("modelling.api.urls")),
    path("api/v1/", include("core.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Browsers ask for /favicon.ico on every page; an empty answer instead of a
    # 404 keeps their consoles (and the browser tests) free of errors.
    path("favicon.ico", lambda request: HttpResponse(status=204)),
]


# Outside DRF views (an unknown /api/ path, a crash), API clients still get
# the API's JSON error format; everything else keeps Django's pages.
def handler404(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)
