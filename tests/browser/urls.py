"""The project's URLs plus a test-only chart page (used with @pytest.mark.urls)."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse
from django.template import engines
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns
from core.plots import ForestRow, forest_plot, line_chart

PAGE = engines["django"].from_string(
    "{% load plots %}<!doctype html><html><head><title>Charts</title></head><body>"
    "<h1>Charts</h1>{% plotly_chart line 'Line with band' %}"
    "{% plotly_chart forest 'Forest plot' %}</body></html>")


@staff_member_required
def charts(request):
    line = line_chart(x=list(range(10)), y=[0.01 * i for i in range(10)],
                      lower=[0.01 * i - 0.005 for i in range(10)],
                      upper=[0.01 * i + 0.005 for i in range(10)],
                      x_title="Customers contacted", y_title="Expected profit",
                      x_kind="count", y_kind="money")
    forest = forest_plot([ForestRow("young </script>", 0.03, 0.01, 0.05, second=0.025),
                          ForestRow("old", -0.01, -0.03, 0.01, second=0.0)],
                         x_title="Effect on conversion")
    return HttpResponse(PAGE.render({"line": line, "forest": forest}, request))


urlpatterns = [*project_urlpatterns, path("test-charts/", charts)]
