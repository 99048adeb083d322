import json
from dataclasses import dataclass

import numpy as np
import pytest

from experiments.stats.decision import DecisionAction
from experiments.stats.serialisation import to_jsonable


@dataclass
class Nested:
    action: DecisionAction
    values: np.ndarray
    lift: float
    counts: dict


def test_it_turns_results_into_strict_json():
    value = Nested(
        action=DecisionAction.KEEP_RUNNING,
        values=np.array([1.5, np.nan]),
        lift=float("inf"),
        counts={"A": np.int64(3), "ok": np.bool_(True), "p": np.float64(0.25)},
    )
    converted = to_jsonable(value)
    assert converted == {
        "action": "keep_running",
        "values": [1.5, None],
        "lift": None,
        "counts": {"A": 3, "ok": True, "p": 0.25},
    }
    json.dumps(converted, allow_nan=False)


def test_it_refuses_unknown_objects():
    with pytest.raises(TypeError, match="cannot serialise"):
        to_jsonable(object())
