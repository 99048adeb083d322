"""Hillstrom import: counts, idempotence, row-level errors, the real file."""

import gzip
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum

from experiments.minethatdata_import import hillstrom_import
from experiments.models import Assignment, Experiment
from marketing.models import Customer, Event
from tests.missing import require_file

pytestmark = pytest.mark.django_db

HEADER = "recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,visit,conversion,spend\n"
ROWS = [
    "10,2) $100 - $200,142.44,1,0,Surburban,0,Phone,Womens E-Mail,0,0,0.0",
    "6,3) $200 - $350,329.08,1,1,Rural,1,Web,No E-Mail,0,0,0.0",
    '7,"7) $1,000 +",1180.0,0,1,Surburban,1,Web,Womens E-Mail,1,1,86.5',
    "9,5) $500 - $750,675.83,1,0,Rural,1,Web,Mens E-Mail,1,0,0.0",
    "2,1) $0 - $100,45.34,1,0,Urban,0,Web,Womens E-Mail,1,1,29.99",
]
REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "hillstrom.csv.gz"


def write(tmp_path, rows, name="h.csv.gz"):
    path = tmp_path / name
    with gzip.open(path, "wt") as f:
        f.write(HEADER + "\n".join(rows) + "\n")
    return path


def arm_sizes():
    return dict(Assignment.objects.values_list("arm__name").annotate(n=Count("id")))


def test_it_imports_customers_arms_and_outcome_events(tmp_path):
    result = hillstrom_import(write(tmp_path, ROWS))
    assert (result.rows, result.customers_created, result.assignments_created,
            result.events_created) == (5, 5, 5, 5)
    assert arm_sizes() == {"Womens E-Mail": 3, "No E-Mail": 1, "Mens E-Mail": 1}
    assert Event.objects.filter(kind="visit").count() == 3
    assert Event.objects.filter(kind="purchase").aggregate(s=Sum("value"))["s"] == pytest.approx(116.49)
    quoted = Customer.objects.get(external_id="hillstrom-3")
    assert quoted.attributes["history_segment"] == "7) $1,000 +"
    assert quoted.attributes["womens"] is True
    experiment = Experiment.objects.get(key="hillstrom")
    assert experiment.arms.get(is_control=True).name == "No E-Mail"
    assert experiment.metrics.get(role="primary").name == "visit"


def test_running_it_twice_changes_nothing(tmp_path):
    path = write(tmp_path, ROWS)
    hillstrom_import(path)
    counts = (Customer.objects.count(), Assignment.objects.count(), Event.objects.count())
    again = hillstrom_import(path)
    assert (again.customers_created, again.assignments_created, again.events_created) == (0, 0, 0)
    assert (Customer.objects.count(), Assignment.objects.count(), Event.objects.count()) == counts


def test_a_bad_row_names_its_line_and_writes_nothing(tmp_path):
    bad = [*ROWS[:2], "x,1) $0 - $100,10,1,0,Urban,0,Web,No E-Mail,0,0,0", ROWS[3],
           "3,1) $0 - $100,10,1,0,Urban,0,Web,Postcard,0,0,0"]
    with pytest.raises(ValidationError) as caught:
        hillstrom_import(write(tmp_path, bad))
    messages = caught.value.message_dict["rows"]
    assert messages[0].startswith("line 4: recency must be a number")
    assert messages[1].startswith("line 6: segment must be one of")
    assert not Customer.objects.exists() and not Experiment.objects.exists()


def test_a_missing_column_is_reported(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("recency,history\n1,2\n")
    with pytest.raises(ValidationError, match="missing columns"):
        hillstrom_import(path)


def test_the_real_file_gives_the_published_arm_sizes():
    require_file(REAL)
    result = hillstrom_import(REAL)
    assert result.customers_created == 64_000
    assert arm_sizes() == {"No E-Mail": 21_306, "Mens E-Mail": 21_307, "Womens E-Mail": 21_387}
