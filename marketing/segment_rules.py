"""Segment rules: validation and compilation to one SQL query.

Grammar (JSON)::

    rule   := {"all": [rule, ...]} | {"any": [rule, ...]} | {"not": rule} | leaf
    leaf   := {"attr": <declared attribute key>, "op": OP, "value": V}
            | {"metric": <behavioural metric, see marketing.behaviour>, "op": OP, "value": V}
            | {"consent": true | false}
            | {"score": "churn_risk" | "expected_revenue_90d", "op": OP, "value": number}
            | {"cluster": {"run": <segmentation run id>, "index": <cluster index>}}
    OP     := "eq" | "ne" | "in" | "not_in" | "gt" | "gte" | "lt" | "lte" | "exists"

Example: ``{"all": [{"attr": "channel", "op": "in", "value": ["web"]},
{"metric": "purchases_90d", "op": "gte", "value": 2}]}``.

A customer who lacks an attribute matches no comparison on it except
``ne`` / ``not_in`` (they are not equal to the value) and ``exists: false``.
Behavioural metrics are computed as of a cutoff time (default: now), by a
correlated subquery per customer, or, inside a bulk query that computed them
as columns, read from those columns (``segment_rule_condition``).
Attribute and consent leaves read the customer's attribute version valid at
the same cutoff (marketing.attribute_history), so a later change of an
attribute or of consent moves no one in or out of a past segment.

Score leaves read the behaviour scores the champion churn and value models
last published (marketing.CustomerPrediction): the latest score, whatever
the cutoff, since scores are not kept per time; a customer without a score
matches no comparison. Cluster leaves read a learned segmentation's
memberships (marketing.ClusterMembership), which keep one definition per
saved run: later customers are added by the nearest centre of that run.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet, ValidationError
from django.db import connection
from django.db.models import BooleanField, JSONField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.small_cells import small_count_public
from marketing.attribute_history import attributes_current_at, version_valid_q
from marketing.behaviour import (
    behaviour_metric_column,
    behaviour_metric_expression,
    behaviour_metric_parse,
)
from marketing.models import (
    ClusterMembership,
    Customer,
    CustomerAttribute,
    CustomerAttributeVersion,
    CustomerPrediction,
)

ORDER_OPS = {"gt", "gte", "lt", "lte"}
OPS = {"eq", "ne", "in", "not_in", "exists"} | ORDER_OPS
SCORE_OPS = {"eq", "ne"} | ORDER_OPS


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError({path: message})


def segment_rule_validate(rule: object, *, path: str = "rule") -> None:
    """Raise ValidationError naming the JSON path of the first problem.

    Size first: a rule compiles to one SQL condition, and PostgreSQL plans
    (and JIT-compiles) a condition of 20,000 branches for longer than any
    request or worker can wait, so a rule may have at most
    SEGMENT_RULE_MAX_NODES nodes (combinators, ``not`` and leaves), nest
    at most SEGMENT_RULE_MAX_DEPTH deep and list at most
    SEGMENT_RULE_MAX_VALUES values in one ``in`` / ``not_in``.
    """
    _size_check(rule, path)
    attributes = {a.key: a for a in CustomerAttribute.objects.all()}
    _validate(rule, path, attributes)


def _size_check(rule: object, path: str) -> None:
    max_nodes, max_depth = settings.SEGMENT_RULE_MAX_NODES, settings.SEGMENT_RULE_MAX_DEPTH
    max_values = settings.SEGMENT_RULE_MAX_VALUES
    nodes, stack = 0, [(rule, 1)]
    while stack:  # iterative: no recursion limit to reach on a hostile rule
        node, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise _fail(path, f"has more than {max_nodes} nodes (combinators, 'not' and "
                              f"conditions); at most {max_nodes} are allowed "
                              "(SEGMENT_RULE_MAX_NODES)")
        if depth > max_depth:
            raise _fail(path, f"nests deeper than {max_depth} levels; at most {max_depth} "
                              "are allowed (SEGMENT_RULE_MAX_DEPTH)")
        if not isinstance(node, dict):
            continue
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                stack.extend((child, depth + 1) for child in node[key])
        if "not" in node:
            stack.append((node["not"], depth + 1))
        values = node.get("value")
        if isinstance(values, list) and len(values) > max_values:
            raise _fail(path, f"lists {len(values)} values in one condition; at most "
                              f"{max_values} are allowed (SEGMENT_RULE_MAX_VALUES)")


def _validate(rule: object, path: str, attributes: dict[str, CustomerAttribute]) -> None:
    if not isinstance(rule, dict) or len(rule) == 0:
        raise _fail(path, "must be a non-empty object")
    if "all" in rule or "any" in rule:
        (combinator,) = [k for k in ("all", "any") if k in rule]
        if len(rule) != 1:
            raise _fail(path, f"'{combinator}' must be the only key")
        children = rule[combinator]
        if not isinstance(children, list) or not children:
            raise _fail(f"{path}.{combinator}", "must be a non-empty list")
        for i, child in enumerate(children):
            _validate(child, f"{path}.{combinator}[{i}]", attributes)
        return
    if "not" in rule:
        if len(rule) != 1:
            raise _fail(path, "'not' must be the only key")
        _validate(rule["not"], f"{path}.not", attributes)
        return
    if "consent" in rule:
        if set(rule) != {"consent"} or not isinstance(rule["consent"], bool):
            raise _fail(path, "'consent' takes true or false and no other key")
        return
    if "score" in rule:
        _validate_score(rule, path)
        return
    if "cluster" in rule:
        cluster = rule["cluster"]
        if (set(rule) != {"cluster"} or not isinstance(cluster, dict)
                or set(cluster) != {"run", "index"}
                or not all(isinstance(cluster[k], int) and not isinstance(cluster[k], bool)
                           and cluster[k] >= 0 for k in ("run", "index"))):
            raise _fail(f"{path}.cluster", "takes {\"run\": <run id>, \"index\": <cluster index>}")
        if not ClusterMembership.objects.filter(run_id=cluster["run"],
                                                cluster=cluster["index"]).exists():
            raise _fail(f"{path}.cluster", f"segmentation run {cluster['run']} has no cluster "
                                           f"{cluster['index']} with members")
        return
    if ("attr" in rule) == ("metric" in rule):
        raise _fail(path, "a leaf needs exactly one of 'attr', 'metric' or 'consent'")
    unknown = set(rule) - {"attr", "metric", "op", "value"}
    if unknown:
        raise _fail(path, f"unknown keys {sorted(unknown)}")
    for name in ("attr", "metric"):
        if name in rule and not isinstance(rule[name], str):
            raise _fail(f"{path}.{name}", "must be a string")
    op = rule.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise _fail(f"{path}.op", f"must be one of {sorted(OPS)}")
    value = rule.get("value")
    if op == "exists":
        if not isinstance(value, bool):
            raise _fail(f"{path}.value", "'exists' takes true or false")
        if "metric" in rule:
            raise _fail(f"{path}.op", "'exists' applies to attributes only")
    elif op in {"in", "not_in"}:
        if not isinstance(value, list) or not value:
            raise _fail(f"{path}.value", f"'{op}' takes a non-empty list")
    elif value is None or isinstance(value, (list, dict)):
        raise _fail(f"{path}.value", f"'{op}' takes a single number, string or boolean")

    if "metric" in rule:
        try:
            behaviour_metric_parse(rule["metric"])
        except ValueError as exc:
            raise _fail(f"{path}.metric", str(exc)) from None
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise _fail(f"{path}.value", "behavioural metrics compare with numbers")
        return

    attribute = attributes.get(rule["attr"])
    if attribute is None:
        raise _fail(f"{path}.attr", f"{rule['attr']!r} is not a declared customer attribute")
    if op in ORDER_OPS and attribute.kind != CustomerAttribute.Kind.NUMERIC:
        raise _fail(f"{path}.op", f"'{op}' needs a numeric attribute; {attribute.key} is {attribute.kind}")


def _validate_score(rule: dict, path: str) -> None:
    unknown = set(rule) - {"score", "op", "value"}
    if unknown:
        raise _fail(path, f"unknown keys {sorted(unknown)}")
    if rule["score"] not in CustomerPrediction.Name.values:
        raise _fail(f"{path}.score", f"choose from {CustomerPrediction.Name.values}")
    if rule.get("op") not in SCORE_OPS:
        raise _fail(f"{path}.op", f"scores take one of {sorted(SCORE_OPS)}")
    value = rule.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _fail(f"{path}.value", "scores compare with a number")


def segment_rule_q(rule: dict, *, as_of: datetime | None = None,
                   behaviour: str | None = None, versions: str | None = None) -> tuple[Q, dict]:
    """Compile a validated rule to a Q plus the annotations it needs.

    ``behaviour`` names a table or alias of the enclosing query whose columns,
    named after the metrics, hold them (instead of a subquery per customer).
    Attributes and consent are read as of ``as_of`` too: from the customer
    row when no attribute version was closed after it (always so for "now"),
    else from each customer's version valid at ``as_of``, which ``versions``
    names (an alias of the enclosing query, see
    marketing.attribute_history.version_join_sql) or, without it, a
    correlated subquery finds.
    """
    attributes_as_of = as_of
    as_of = as_of or timezone.now()
    state_annotations = _state_annotations(attributes_as_of, versions)

    def metric_expression(metric):
        if behaviour:
            return behaviour_metric_column(metric, behaviour)
        return behaviour_metric_expression(metric, as_of)

    annotations: dict = dict(state_annotations)
    fields = (_ATTRIBUTES, _CONSENT) if state_annotations else ("attributes", "marketing_consent")
    return _compile(rule, metric_expression, annotations, fields), annotations


# Annotations holding the attributes and consent valid at a past cutoff.
_ATTRIBUTES, _CONSENT = "_attributes_then", "_consent_then"


def _state_annotations(as_of: datetime | None, versions: str | None) -> dict:
    """{} when the customer row is the state at ``as_of``, else the state's annotations."""
    if as_of is None or attributes_current_at(as_of):
        return {}
    if versions:
        alias = connection.ops.quote_name(versions)
        return {_ATTRIBUTES: RawSQL(f"{alias}.attributes", [], output_field=JSONField()),
                _CONSENT: RawSQL(f"{alias}.marketing_consent", [], output_field=BooleanField())}
    valid = CustomerAttributeVersion.objects.filter(version_valid_q(as_of),
                                                    customer=OuterRef("pk"))
    return {_ATTRIBUTES: _Subquery(valid.values("attributes")[:1], output_field=JSONField()),
            _CONSENT: _Subquery(valid.values("marketing_consent")[:1],
                                output_field=BooleanField())}


class _Subquery(Subquery):
    """A Subquery whose params are a list: Django's JSON has_key on SQLite appends to them."""

    def as_sql(self, *args, **kwargs):
        sql, params = super().as_sql(*args, **kwargs)
        return sql, list(params)


def segment_rule_metrics(rule: dict) -> set[str]:
    """The behavioural metric names a validated rule reads."""
    if "all" in rule or "any" in rule:
        return set().union(*(segment_rule_metrics(c) for c in rule.get("all", rule.get("any"))))
    if "not" in rule:
        return segment_rule_metrics(rule["not"])
    return {rule["metric"]} if "metric" in rule else set()


def _compile(rule: dict, metric_expression, annotations: dict,
             fields: tuple[str, str] = ("attributes", "marketing_consent")) -> Q:
    attributes, consent = fields
    if "all" in rule:
        q = Q()
        for child in rule["all"]:
            q &= _compile(child, metric_expression, annotations, fields)
        return q
    if "any" in rule:
        q = Q(pk__in=[])
        for child in rule["any"]:
            q |= _compile(child, metric_expression, annotations, fields)
        return q
    if "not" in rule:
        return ~_compile(rule["not"], metric_expression, annotations, fields)
    if "consent" in rule:
        return Q(**{consent: rule["consent"]})

    if "cluster" in rule:
        members = ClusterMembership.objects.filter(run_id=rule["cluster"]["run"],
                                                   cluster=rule["cluster"]["index"])
        return Q(pk__in=members.values("customer_id"))
    op, value = rule["op"], rule.get("value")
    if "score" in rule:
        alias = f"_s_{rule['score']}"
        annotations[alias] = Subquery(CustomerPrediction.objects.filter(
            customer=OuterRef("pk"), name=rule["score"]).values("value")[:1])
        if op == "ne":
            return ~Q(**{alias: value}) & Q(**{f"{alias}__isnull": False})
        return Q(**{alias if op == "eq" else f"{alias}__{op}": value})
    if "metric" in rule:
        metric = behaviour_metric_parse(rule["metric"])
        alias = f"_m_{metric.name}"
        annotations[alias] = metric_expression(metric)
        field = alias
        present = Q()
    else:
        field = f"{attributes}__{rule['attr']}"
        present = Q(**{f"{attributes}__has_key": rule["attr"]})
        if op == "exists":
            return present if value else ~present

    if op == "eq":
        return present & Q(**{field: value})
    if op == "ne":
        return ~(present & Q(**{field: value}))
    if op == "in":
        return present & Q(**{f"{field}__in": value})
    if op == "not_in":
        return ~(present & Q(**{f"{field}__in": value}))
    return present & Q(**{f"{field}__{op}": value})


def segment_members(rule: dict, *, as_of: datetime | None = None) -> QuerySet[Customer]:
    """Customers matching the rule as of ``as_of`` (default now), as one lazy query.

    Behavioural metrics, attributes and consent are all read as of
    ``as_of`` (see segment_rule_q); nothing is loaded.
    """
    q, annotations = segment_rule_q(rule, as_of=as_of)
    return Customer.objects.annotate(**annotations).filter(q)


def segment_rule_condition(rule: dict, *, as_of: datetime | None = None,
                           behaviour: str | None = None,
                           versions: str | None = None) -> tuple[str, list]:
    """The rule as a SQL boolean over one customer row, for use inside a larger query.

    The expression refers to the customer table by its own name, for
    behavioural metrics to columns of ``behaviour`` and, for attributes and
    consent as of a past ``as_of``, to the version row ``versions``
    (correlated subqueries without them); the caller's query must have them
    in FROM. It is the WHERE clause ``segment_members`` runs, compiled by
    the same code.
    """
    q, annotations = segment_rule_q(rule, as_of=as_of, behaviour=behaviour, versions=versions)
    query = Customer.objects.annotate(**annotations).filter(q).query
    try:
        sql, params = query.get_compiler(connection=connection).compile(query.where)
    except EmptyResultSet:  # e.g. {"any": []}-like rules Django proves empty
        return "1 = 0", []
    except FullResultSet:  # a rule that holds for everyone
        return "1 = 1", []
    return (sql or "1 = 1"), list(params)


def segment_count_public(segment) -> tuple[int | None, str]:
    """The segment's cached member count as the admin and the API show it (core.small_cells)."""
    seed = f"segment {segment.pk} at {segment.counted_at.isoformat()}" if segment.counted_at else ""
    return small_count_public(segment.member_count, seed=seed)
