"""Template filters for numbers, checked against hand-written strings."""

import math

import pytest
from django.template import Context, Template

from core.templatetags.humanize_extra import money, pp, pvalue, sig3, signed_pct


@pytest.mark.parametrize(("value", "text"), [
    (0.02248, "+2.2 pp"), (-0.005, "-0.5 pp"), (0.0, "0.0 pp"), (-0.0004, "0.0 pp"),
    (0.1, "+10.0 pp"), (None, "—"), (math.nan, "—"), ("x", "—"),
])
def test_pp(value, text):
    assert pp(value) == text


@pytest.mark.parametrize(("value", "decimals", "text"), [
    (0.1234, 1, "+12.3%"), (-0.05, 1, "-5.0%"), (0.1234, 0, "+12%"), (0, 1, "0.0%"),
])
def test_signed_pct(value, decimals, text):
    assert signed_pct(value, decimals) == text


@pytest.mark.parametrize(("value", "symbol", "text"), [
    (1234.5, "", "1,234.50"), (1234.5, "$", "$1,234.50"), (-3, "$", "-$3.00"),
    (1_234_567.891, "€", "€1,234,567.89"), (-0.001, "", "0.00"), (None, "$", "—"),
])
def test_money(value, symbol, text):
    assert money(value, symbol) == text


@pytest.mark.parametrize(("value", "text"), [
    (32031, "32,031"), (32031.0, "32,031"), (0, "0"), (-1200, "-1,200"),
    (1234.56, "1,235"), (123.4, "123"), (12.345, "12.3"), (1.2345, "1.23"),
    (0.012345, "0.0123"), (-0.5, "-0.500"), (99.96, "100"), (9.996, "10.0"),
    (None, "—"), (math.inf, "—"),
])
def test_sig3(value, text):
    assert sig3(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (0.0004, "< 0.001"), (0.0, "< 0.001"), (0.001, "0.001"), (0.0456, "0.046"),
    (0.5, "0.500"), (1.0, "1.000"), (None, "—"),
])
def test_pvalue(value, text):
    assert pvalue(value) == text


def test_the_filters_load_in_a_template():
    out = Template("{% load humanize_extra %}{{ a|pp }} | {{ b|money:'$' }} | {{ c|sig3 }}").render(
        Context({"a": 0.02248, "b": 98765.4, "c": 32031}))
    assert out == "+2.2 pp | $98,765.40 | 32,031"


def test_words_turns_a_stored_code_into_words():
    from core.templatetags.humanize_extra import words
    assert words("keep_running") == "keep running"
    assert words("ship") == "ship"
    assert words(None) == "—"


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0.02248, "pp", "+2.2 pp"), (-0.005, "pp", "-0.5 pp"),
    (0.354, "money", "+€0.35"), (-1234.5, "money", "-€1,234.50"), (0.001, "money", "€0.00"),
    (0.012345, "count", "+0.0123"), (-0.5, "count", "-0.500"), (0.0, "count", "0"),
    (None, "money", "—"), (math.nan, "pp", "—"),
])
def test_effect_is_signed_in_its_unit(value, unit, text):
    from core.templatetags.humanize_extra import effect
    assert effect(value, unit) == text


@pytest.mark.parametrize(("value", "text"), [
    (3.4, "3.40 extra unsubscribes"), (-3.4, "3.40 fewer unsubscribes"),
    (-1234.0, "1,234 fewer unsubscribes"), (0.0, "no change in unsubscribes"),
    (None, "—"),
])
def test_more_or_fewer_never_writes_a_negative_extra(value, text):
    from core.templatetags.humanize_extra import more_or_fewer
    assert more_or_fewer(value, "unsubscribes") == text
