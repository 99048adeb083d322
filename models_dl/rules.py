"""Targeting rules a person can read: a depth <= 3 tree over expected profit.

Given predicted (or true) uplift ``u_ik`` of customer i under arm k, the
contact is worth, net of its cost,

    profit_ik = u_ik * value_per_conversion - cost_k        (no contact: 0)

The best individual policy gives each customer ``argmax_k profit_ik`` (or no
contact when every profit is <= 0), but a score per customer says nothing a
campaign manager can check or reuse. :func:`policy_rules` fits a small
multi-output regression tree (scikit-learn's ``DecisionTreeRegressor``,
squared error summed over the K profit columns) to the profit matrix; each
leaf then takes the action with the highest *mean* profit among its rows,
no contact when every mean is <= 0. Fitting profit rather than uplift makes
the rules valid at the campaign's costs: raising one arm's cost moves the
leaves where it was barely the best to the runner-up. The "no contact"
column of zeros is not given to the regressor (a constant column changes no
split); it enters only the leaf's argmax.

The tree minimises squared error, not policy value (an exhaustive policy
tree, Athey & Wager 2021, does the latter at a far higher cost), so
:meth:`PolicyRules.value_share` reports how much of a reference policy's
value the rules keep on held-out rows.

Readability: each split threshold is replaced by the roundest number that
moves at most ``rounding_tolerance`` of the node's rows to the other side
(0.5 or 0.74 rather than 0.50031 or 0.73917; the rules, their shares and
:meth:`PolicyRules.predict` all use the rounded value), leaves with the
same action are merged when they are siblings or neighbouring intervals of
one feature, bounds on the same feature along a
path are printed as one interval (``days in (60, 240]``), and categorical
columns (non-numeric DataFrame columns or ``categorical_features``) are
one-hot encoded here and read ``region is north`` / ``region is not north``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeRegressor

__all__ = ["PolicyRule", "PolicyRules", "best_action", "policy_rules", "profit_matrix"]

NO_CONTACT = -1


def profit_matrix(
    uplift: Any, cost_per_contact: float | Sequence[float] = 0.0, value_per_conversion: float = 1.0
) -> np.ndarray:
    """``uplift_k * value - cost_k`` per customer and arm, shape ``(n, K)``."""
    u = np.asarray(uplift, dtype=np.float64)
    u = u.reshape(-1, 1) if u.ndim == 1 else u
    if u.ndim != 2 or not np.all(np.isfinite(u)):
        raise ValueError("uplift must be a finite (n,) or (n, K) array")
    cost = np.asarray(cost_per_contact, dtype=np.float64).reshape(-1)
    if cost.size not in (1, u.shape[1]):
        raise ValueError(f"cost_per_contact needs 1 or {u.shape[1]} values, got {cost.size}")
    return u * value_per_conversion - cost


def best_action(profit: np.ndarray) -> np.ndarray:
    """Per row, the column with the highest profit, or -1 when none is positive."""
    profit = np.asarray(profit, dtype=np.float64)
    profit = profit.reshape(-1, 1) if profit.ndim == 1 else profit
    best = profit.argmax(axis=1)
    return np.where(profit[np.arange(len(best)), best] > 0, best, NO_CONTACT)


# ---------------------------------------------------------------- encoding
@dataclass(frozen=True)
class _Column:
    feature: str
    level: str | None = None  # set for one-hot columns of a categorical


def _encode_spec(
    X: Any, feature_names: Sequence[str] | None, categorical: Sequence[Any] | None
) -> tuple[list[str], dict[str, list[str]]]:
    """Feature names and, for categorical ones, their levels (sorted)."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    names = list(feature_names) if feature_names is not None else (
        [str(c) for c in frame.columns] if isinstance(X, pd.DataFrame)
        else [f"x{j}" for j in range(frame.shape[1])]
    )
    if len(names) != frame.shape[1]:
        raise ValueError(f"feature_names has {len(names)} names, X has {frame.shape[1]} columns")
    forced = set(categorical or [])
    levels = {}
    for j, name in enumerate(names):
        series = frame.iloc[:, j]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if name in forced or j in forced or not numeric:
            levels[name] = sorted(series.dropna().astype(str).unique().tolist())
    return names, levels


def _encode(X: Any, names: list[str], levels: dict[str, list[str]]):
    """Numeric matrix for the tree and what each of its columns means."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    if frame.shape[1] != len(names):
        raise ValueError(f"X has {frame.shape[1]} columns, the rules use {len(names)}")
    blocks, columns = [], []
    for j, name in enumerate(names):
        series = frame.iloc[:, j]
        if name in levels:
            labels = series.astype(str).where(series.notna())
            for level in levels[name]:
                blocks.append((labels == level).to_numpy(dtype=np.float64))
                columns.append(_Column(name, level))
        else:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(values)):
                raise ValueError(f"feature {name!r} has missing or infinite values; fill them first")
            blocks.append(values)
            columns.append(_Column(name))
    return np.column_stack(blocks), columns


# ------------------------------------------------------------- rounding
def _round_threshold(values: np.ndarray, cut: float, tolerance: float) -> tuple[float, int]:
    """The roundest threshold near ``cut`` and its number of decimals.

    ``values`` are the node's training values of the split column and
    ``cut`` the tree's threshold (``x <= cut`` goes left). Tries multiples of
    10^6, 10^5, ..., 10^-12 and keeps the first that sends at most
    ``tolerance * len(values)`` rows to the other side than ``cut`` did and
    leaves both sides non-empty. With ``tolerance=0`` the split of the
    training rows is unchanged (any ``t`` with ``low <= t < high``, the
    largest value sent left and the smallest sent right, qualifies).
    """
    left = values <= cut
    allowed = tolerance * values.size
    for decimals in range(-6, 13):
        unit = 10.0 ** abs(decimals)
        k = math.floor(cut * unit) if decimals >= 0 else math.floor(cut / unit)
        best = None
        for kk in (k, k + 1):
            t = kk / unit if decimals >= 0 else kk * unit
            goes_left = values <= t
            moved = int(np.count_nonzero(goes_left != left))
            if moved <= allowed and goes_left.any() and not goes_left.all():
                if best is None or moved < best[0]:
                    best = (moved, t)
        if best is not None:
            return best[1], max(decimals, 0)
    return float(cut), 15


def _format_number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _format_effect(value: float) -> str:
    """Two significant digits, sign shown, never in exponent notation."""
    if value == 0:
        return "+0"
    text = np.format_float_positional(value, precision=2, unique=False, fractional=False, trim="-")
    return text if text.startswith("-") else "+" + text


def _format_share(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.1%}"


# ------------------------------------------------------------------- tree
@dataclass
class _Node:
    rows: np.ndarray  # training rows reaching the node
    column: int = -1  # split column (-1: leaf)
    threshold: float = 0.0
    decimals: int = 0
    left: _Node | None = None
    right: _Node | None = None
    action: int = NO_CONTACT


@dataclass(frozen=True)
class PolicyRule:
    """One leaf of the rules.

    ``conditions``: structured, ``{"feature", "op", "value"}`` with ``op`` one
    of ``<=``, ``>``, ``is``, ``is not``. ``action``: -1 for no contact, else
    the uplift column (treatment code - 1). ``share``: of the rows the rules
    were fitted on. ``mean_uplift`` / ``mean_profit``: of the action, averaged
    over the leaf's rows (0 for no contact).
    """

    conditions: list[dict[str, Any]]
    action: int
    action_name: str
    share: float
    mean_uplift: float
    mean_profit: float
    text: str


class PolicyRules:
    """Fitted targeting rules; build them with :func:`policy_rules`."""

    def __init__(
        self, root: _Node, columns: list[_Column], names: list[str],
        levels: dict[str, list[str]], uplift: np.ndarray, profit: np.ndarray,
        arm_names: list[str], unit: str, cost: np.ndarray, value_per_conversion: float,
    ) -> None:
        self._root = root
        self._columns = columns
        self._names = names
        self._levels = levels
        self.arm_names = arm_names
        self.cost_per_contact = cost
        self.value_per_conversion = value_per_conversion
        self._unit = unit
        self.rules: list[PolicyRule] = []
        self._collect(root, [], uplift, profit, len(uplift))
        self.text: list[str] = [rule.text for rule in self.rules]

    # ----------------------------------------------------------- reading
    def _collect(self, node: _Node, path: list[tuple[int, str, float, int]],
                 uplift: np.ndarray, profit: np.ndarray, n: int) -> None:
        if node.column >= 0:
            for child, op in ((node.left, "<="), (node.right, ">")):
                split = (node.column, op, node.threshold, node.decimals)
                self._collect(child, [*path, split], uplift, profit, n)
            return
        rows, action = node.rows, node.action
        share = len(rows) / n
        mean_uplift = float(uplift[rows, action].mean()) if action >= 0 else 0.0
        mean_profit = float(profit[rows, action].mean()) if action >= 0 else 0.0
        conditions, words = self._conditions(path)
        name = "no contact" if action < 0 else self.arm_names[action]
        detail = f"{_format_share(share)} of customers"
        if action >= 0:
            detail += f", {_format_effect(mean_uplift)} {self._unit} each"
            if np.any(self.cost_per_contact != 0):
                detail += f", profit {_format_effect(mean_profit)} each"
        text = f"{' and '.join(words) or 'everyone'} -> {name} ({detail})"
        self.rules.append(PolicyRule(conditions, action, name, share, mean_uplift,
                                     mean_profit, text))

    def _conditions(
        self, path: list[tuple[int, str, float, int]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Merge a path's splits per feature into readable conditions."""
        numeric: dict[str, list[Any]] = {}  # feature -> [low, low_dec, high, high_dec]
        is_level: dict[str, str] = {}
        not_levels: dict[str, list[str]] = {}
        order: list[str] = []
        for column, op, threshold, decimals in path:
            col = self._columns[column]
            if col.feature not in order:
                order.append(col.feature)
            if col.level is not None:
                if op == ">":
                    is_level[col.feature] = col.level
                else:
                    not_levels.setdefault(col.feature, []).append(col.level)
                continue
            bounds = numeric.setdefault(col.feature, [None, 0, None, 0])
            if op == ">" and (bounds[0] is None or threshold > bounds[0]):
                bounds[0:2] = [threshold, decimals]
            if op == "<=" and (bounds[2] is None or threshold < bounds[2]):
                bounds[2:4] = [threshold, decimals]
        conditions, words = [], []
        for feature in order:
            if feature in is_level:
                conditions.append({"feature": feature, "op": "is", "value": is_level[feature]})
                words.append(f"{feature} is {is_level[feature]}")
            elif feature in not_levels:
                excluded = not_levels[feature]
                conditions += [{"feature": feature, "op": "is not", "value": v} for v in excluded]
                listed = excluded[0] if len(excluded) == 1 else "(" + ", ".join(excluded) + ")"
                words.append(f"{feature} is not {listed}" if len(excluded) == 1
                             else f"{feature} not in {listed}")
            else:
                low, low_dec, high, high_dec = numeric[feature]
                if low is not None:
                    conditions.append({"feature": feature, "op": ">", "value": low})
                if high is not None:
                    conditions.append({"feature": feature, "op": "<=", "value": high})
                if low is not None and high is not None:
                    words.append(f"{feature} in ({_format_number(low, low_dec)}, "
                                 f"{_format_number(high, high_dec)}]")
                elif low is not None:
                    words.append(f"{feature} > {_format_number(low, low_dec)}")
                else:
                    words.append(f"{feature} <= {_format_number(high, high_dec)}")
        return conditions, words

    def to_json(self) -> str:
        """The structured rules as JSON, for storing next to a model version."""
        return json.dumps([asdict(rule) for rule in self.rules])

    def __str__(self) -> str:
        return "\n".join(self.text)

    # ----------------------------------------------------------- scoring
    def predict(self, X: Any) -> np.ndarray:
        """Action per row: -1 for no contact, else the uplift column (0..K-1)."""
        matrix, _ = _encode(X, self._names, self._levels)
        out = np.full(matrix.shape[0], NO_CONTACT, dtype=np.int64)

        def walk(node: _Node, rows: np.ndarray) -> None:
            if node.column < 0:
                out[rows] = node.action
                return
            goes_left = matrix[rows, node.column] <= node.threshold
            walk(node.left, rows[goes_left])
            walk(node.right, rows[~goes_left])

        walk(self._root, np.arange(matrix.shape[0]))
        return out

    def value_share(
        self, X: Any, outcome: Any, reference_arm: Any = None, *, kind: str = "uplift"
    ) -> float:
        """Value of the rules' policy over the value of a reference policy on rows ``X``.

        A policy's value is ``sum_i profit_i,action_i`` (0 for no contact).
        ``outcome`` is the per-arm uplift (``kind="uplift"``: turned into
        profit at the rules' costs) or already a profit matrix
        (``kind="profit"``), predicted or true. ``reference_arm``: one action
        for everyone, an action per row, or ``None`` for the per-row best
        action under ``outcome`` (the individual policy the rules summarise).
        """
        if kind == "uplift":
            profit = profit_matrix(outcome, self.cost_per_contact, self.value_per_conversion)
        elif kind == "profit":
            profit = np.asarray(outcome, dtype=np.float64)
            profit = profit.reshape(-1, 1) if profit.ndim == 1 else profit
        else:
            raise ValueError("kind must be 'uplift' or 'profit'")
        reference = best_action(profit) if reference_arm is None else np.broadcast_to(
            np.asarray(reference_arm, dtype=np.int64), (profit.shape[0],))
        if reference.min() < NO_CONTACT or reference.max() >= profit.shape[1]:
            raise ValueError(f"reference actions must be -1 (no contact) or 0..{profit.shape[1] - 1}")
        reference_value = _policy_value(profit, reference)
        if reference_value <= 0:
            raise ValueError("the reference policy has no positive value on these rows")
        return _policy_value(profit, self.predict(X)) / reference_value


def _policy_value(profit: np.ndarray, action: np.ndarray) -> float:
    rows = np.flatnonzero(action >= 0)
    return float(profit[rows, action[rows]].sum())


def _leaf_action(profit: np.ndarray) -> int:
    means = profit.mean(axis=0)
    best = int(means.argmax())
    return best if means[best] > 0 else NO_CONTACT


def _build(
    tree, node_id: int, rows: np.ndarray, matrix: np.ndarray, profit: np.ndarray, tolerance: float
) -> _Node:
    """Copy sklearn's tree with rounded thresholds; merge same-action sibling leaves."""
    left_id, right_id = tree.children_left[node_id], tree.children_right[node_id]
    if left_id < 0:
        return _Node(rows, action=_leaf_action(profit[rows]))
    column = int(tree.feature[node_id])
    values = matrix[rows, column]
    threshold, decimals = _round_threshold(values, tree.threshold[node_id], tolerance)
    goes_left = values <= threshold
    left = _build(tree, left_id, rows[goes_left], matrix, profit, tolerance)
    right = _build(tree, right_id, rows[~goes_left], matrix, profit, tolerance)
    if left.column < 0 and right.column < 0 and left.action == right.action:
        # a split that changes no decision only adds a line to read
        return _Node(rows, action=_leaf_action(profit[rows]))
    return _merge_adjacent(_Node(rows, column, threshold, decimals, left, right), profit)


def _merge_adjacent(node: _Node, profit: np.ndarray) -> _Node:
    """Merge two leaves with the same action that are neighbouring intervals of one column.

    ``x <= 0.6 ? (x <= 0.3 ? A : B) : B`` reads as three rules; it is the
    same function as ``x <= 0.3 ? A : B`` (two rules). Both orientations are
    handled; the merged leaf's action is recomputed from its rows.
    """
    inner, outer_leaf = (node.left, node.right)
    if inner.column == node.column and outer_leaf.column < 0:
        near = inner.right  # the part of the left side next to the right side
        if near.column < 0 and near.action == outer_leaf.action:
            rows = np.concatenate([near.rows, outer_leaf.rows])
            merged = _Node(rows, action=_leaf_action(profit[rows]))
            return _Node(node.rows, inner.column, inner.threshold, inner.decimals,
                         inner.left, merged)
    outer_leaf, inner = (node.left, node.right)
    if inner.column == node.column and outer_leaf.column < 0:
        near = inner.left
        if near.column < 0 and near.action == outer_leaf.action:
            rows = np.concatenate([outer_leaf.rows, near.rows])
            merged = _Node(rows, action=_leaf_action(profit[rows]))
            return _Node(node.rows, inner.column, inner.threshold, inner.decimals,
                         merged, inner.right)
    return node


def policy_rules(
    X: Any,
    uplift: Any,
    *,
    feature_names: Sequence[str] | None = None,
    max_depth: int = 3,
    cost_per_contact: float | Sequence[float] = 0.0,
    value_per_conversion: float = 1.0,
    min_leaf_share: float = 0.02,
    arm_names: Sequence[str] | None = None,
    categorical_features: Sequence[Any] | None = None,
    unit: str = "conversions",
    rounding_tolerance: float = 0.005,
    random_state: int | None = 0,
    profit: Any = None,
) -> PolicyRules:
    """Fit readable rules saying who gets which arm (or no contact); see the module docstring.

    ``X``: the features a person can read (a DataFrame or numeric matrix; not
    the network's standardised inputs). ``uplift``: ``(n,)`` or ``(n, K)``,
    column k for treatment code k + 1. ``cost_per_contact``: one number or
    one per arm. ``min_leaf_share``: smallest leaf, as a share of rows, so no
    rule is about a handful of customers. ``arm_names``: printed instead of
    ``arm 1..K``; ``unit``: what the uplift counts, for the text.
    ``rounding_tolerance``: share of a node's rows a rounded threshold may
    move across its split (0: thresholds split the training rows exactly as
    the tree did; the default 0.5 % turns 0.73917 into 0.74 on dense data).
    ``profit``: an ``(n, K)`` profit table to fit instead of
    ``uplift * value - cost`` (one with per-arm conversion costs and priced
    harm, say); ``cost_per_contact`` and ``value_per_conversion`` then only
    describe the rules and turn uplift into profit in :meth:`value_share`.
    """
    if not 1 <= max_depth <= 3:
        raise ValueError("max_depth must be 1, 2 or 3: deeper rules are not read")
    if value_per_conversion < 0 or np.any(np.asarray(cost_per_contact) < 0):
        raise ValueError("costs and values must be non-negative")
    u = np.asarray(uplift, dtype=np.float64)
    u = u.reshape(-1, 1) if u.ndim == 1 else u
    if profit is None:
        profit = profit_matrix(u, cost_per_contact, value_per_conversion)
    else:
        profit = np.asarray(profit, dtype=np.float64)
        profit = profit.reshape(-1, 1) if profit.ndim == 1 else profit
        if profit.shape != u.shape or not np.all(np.isfinite(profit)):
            raise ValueError(f"profit must be a finite {u.shape} array like uplift")
    names, levels = _encode_spec(X, feature_names, categorical_features)
    matrix, columns = _encode(X, names, levels)
    if matrix.shape[0] != u.shape[0]:
        raise ValueError(f"X has {matrix.shape[0]} rows, uplift has {u.shape[0]}")
    arms = (
        [f"arm {k}" for k in range(1, u.shape[1] + 1)] if arm_names is None
        else [str(a) for a in arm_names]
    )
    if len(arms) != u.shape[1]:
        raise ValueError(f"arm_names needs {u.shape[1]} names, got {len(arms)}")
    tree = DecisionTreeRegressor(
        max_depth=max_depth,
        min_samples_leaf=max(1, math.ceil(min_leaf_share * matrix.shape[0])),
        random_state=random_state,
    ).fit(matrix, profit)
    root = _build(tree.tree_, 0, np.arange(matrix.shape[0]), matrix, profit, rounding_tolerance)
    cost = np.broadcast_to(np.asarray(cost_per_contact, dtype=np.float64), (u.shape[1],)).copy()
    return PolicyRules(root, columns, names, levels, u, profit, arms, unit, cost,
                       value_per_conversion)
