"""benchmarks/uplift_quality.py runs end to end on a tiny problem and skips absent data."""

import importlib.util
import sys
from pathlib import Path

import causalml  # noqa: F401 - reference libraries are requirements, not optional
import lightgbm  # noqa: F401

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "uplift_quality.py"


def _load(monkeypatch):
    spec = importlib.util.spec_from_file_location("uplift_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "uplift_quality", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_it_prints_a_table_and_skips_missing_files(tmp_path, capsys, monkeypatch):
    _load(monkeypatch).main(
        [
            "--datasets", "demo", "ihdp", "hillstrom",
            "--demo-rows", "900",
            "--learners", "tarnet", "T", "truth",
            "--deep-params", '{"max_epochs": 2}',
            "--ihdp-dir", str(tmp_path / "no-ihdp"),
            "--hillstrom", str(tmp_path / "no-hillstrom.csv.gz"),
        ]
    )
    out = capsys.readouterr().out
    assert "skipping IHDP" in out and "skipping Hillstrom" in out
    assert "== (a) demo generator" in out
    assert out.count("tarnet") >= 2 and "qini_true" in out
    # the true effects as scores: no error, and the best true-effect Qini
    # table rows: learner, sqrt_pehe, (median), qini, qini_true, auuc, fit_s
    rows = {cols[0]: cols for cols in map(str.split, out.splitlines()) if len(cols) == 7}
    assert float(rows["truth"][1]) == 0.0
    assert float(rows["truth"][4]) >= float(rows["T"][4])


def test_verdicts_give_the_paired_difference_over_splits(capsys, monkeypatch):
    module = _load(monkeypatch)
    results = {
        "default": module.Score(qini=[0.1, 0.2, 0.3], sqrt_pehe=[1.0, 1.0, 1.0]),
        "T": module.Score(qini=[0.2, 0.1, 0.25], sqrt_pehe=[2.0, 0.5, 2.0]),
        "S": module.Score(qini=[0.0, 0.0, 0.0], sqrt_pehe=[3.0, 3.0, 3.0]),
        "truth": module.Score(qini=[0.1, 0.1, 0.1], sqrt_pehe=[0.0, 0.0, 0.0]),
    }
    module.print_table("t", results)
    out = capsys.readouterr().out
    # differences default - T: -0.1, +0.1, +0.05 -> mean 0.0167, sd 0.1041, se 0.0601
    assert "default beats the best causalml Qini (0.2000 vs T 0.1833)" in out
    assert "per split default - T = +0.0167 (se 0.0601), default better on 2 of 3" in out
    assert "ranking by the true effects scores 0.1000" in out
    # lower is better for sqrt_pehe: T (1.5) is the best rival; the default wins 2 splits
    assert "default beats the best causalml sqrt_pehe (1.0000 vs T 1.5000)" in out
    assert "default better on 2 of 3" in out.split("sqrt_pehe (1.0000")[1]
