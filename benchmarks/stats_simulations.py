"""Print the calibration figures of experiments.stats and the cost of one analysis.

    python -m benchmarks.stats_simulations [--experiments 2000] [--seeds 5]   (from the repo root)

Each figure is averaged over ``--seeds`` independent batches of
``--experiments`` simulated experiments; the spread across seeds is shown so
that a reader can tell noise from bias. Runs in a few seconds on one core.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from experiments.stats.analysis import ExperimentDesign, MetricSpec, analyse_experiment
from experiments.stats.arm_estimates import mean_estimate, proportion_estimate
from experiments.stats.cuped import cuped_compare, pooled_theta
from experiments.stats.frequentist import compare_arms
from experiments.stats.sequential import confidence_sequence, optimal_rho
from experiments.stats.sufficient import ArmStatistics


def zero_inflated(rng: np.random.Generator, experiments: int, n: int, rate: float) -> ArmStatistics:
    rows = (rng.random((experiments, n)) < rate) * rng.lognormal(2.0, 1.0, (experiments, n))
    return ArmStatistics(
        n=np.full(experiments, float(n)), sum_y=rows.sum(1), sum_y2=(rows**2).sum(1)
    )


def cumulative_normal(
    rng: np.random.Generator, experiments: int, batch: int, looks: int, mean: float
) -> ArmStatistics:
    total = rng.normal(batch * mean, np.sqrt(batch), (experiments, looks))
    centred = rng.chisquare(batch - 1, (experiments, looks))
    return ArmStatistics(
        n=np.cumsum(np.full((experiments, looks), float(batch)), 1),
        sum_y=np.cumsum(total, 1),
        sum_y2=np.cumsum(centred + total**2 / batch, 1),
    )


def figures(seed: int, experiments: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}

    control, treatment = (
        zero_inflated(rng, experiments, 1000, 0.3),
        zero_inflated(rng, experiments, 1000, 0.3),
    )
    out["A/A false-positive rate, revenue, Welch t"] = np.mean(
        compare_arms(mean_estimate(control), mean_estimate(treatment)).p_value < 0.05
    )
    k = rng.binomial(1000, 0.08, (2, experiments)).astype(float)
    c, t = (
        proportion_estimate(ArmStatistics(n=np.full(experiments, 1000.0), sum_y=x, sum_y2=x))
        for x in k
    )
    out["A/A false-positive rate, conversion, Wald z"] = np.mean(compare_arms(c, t).p_value < 0.05)

    treatment = zero_inflated(rng, experiments, 1000, 0.33)
    effect = compare_arms(mean_estimate(control), mean_estimate(treatment))
    scale = np.exp(2.5)
    difference, lift = 0.03 * scale, 0.33 / 0.30 - 1
    out["95% CI coverage, absolute difference"] = np.mean(
        (effect.absolute_ci_low <= difference) & (difference <= effect.absolute_ci_high)
    )
    out["95% CI coverage, relative lift (delta method)"] = np.mean(
        (effect.relative_ci_low <= lift) & (lift <= effect.relative_ci_high)
    )

    batch, looks = 500, 20
    c = mean_estimate(cumulative_normal(rng, experiments, batch, looks, 0.0))
    t = mean_estimate(cumulative_normal(rng, experiments, batch, looks, 0.0))
    fixed = compare_arms(c, t)
    sequential = confidence_sequence(c, t, rho=optimal_rho(2 * batch * looks))
    out["20 looks: fixed-horizon test rejects at some look"] = np.mean(
        np.any(fixed.p_value < 0.05, 1)
    )
    out["20 looks: confidence sequence rejects at some look"] = np.mean(
        np.any(sequential.p_value <= 0.05, 1)
    )

    rho, n = 0.7, 500
    arms = []
    for _ in range(2):
        x = rng.standard_normal((experiments, n))
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((experiments, n))
        arms.append(
            ArmStatistics(
                n=np.full(experiments, float(n)),
                sum_y=y.sum(1),
                sum_y2=(y**2).sum(1),
                sum_x=x.sum(1),
                sum_x2=(x**2).sum(1),
                sum_xy=(x * y).sum(1),
            )
        )
    cuped = cuped_compare(arms[0], arms[1], pooled_theta(arms), 0.0)
    out["CUPED variance reduction at rho = 0.7 (expect 0.49)"] = np.median(cuped.variance_reduction)
    out["CUPED A/A false-positive rate"] = np.mean(cuped.effect.p_value < 0.05)
    return out


def time_one_analysis() -> float:
    rng = np.random.default_rng(0)
    arms = ("control", "B", "C")

    def revenue() -> ArmStatistics:
        x = rng.gamma(2.0, 15.0, 20_000) * (rng.random(20_000) < 0.4)
        return ArmStatistics.from_values(0.8 * x + rng.gamma(2.0, 5.0, 20_000), x)

    def converted() -> ArmStatistics:
        return ArmStatistics.from_values((rng.random(20_000) < 0.1).astype(float))

    data = {"revenue": {a: revenue() for a in arms}, "converted": {a: converted() for a in arms}}
    segments = {f"segment {i}": data for i in range(10)}
    design = ExperimentDesign(
        control="control", weights=dict.fromkeys(arms, 1.0), planned_sample_size=90_000
    )
    metrics = [
        MetricSpec("revenue", "mean", minimum_detectable_effect=0.03),
        MetricSpec("converted", "proportion"),
    ]
    start = time.perf_counter()
    analyse_experiment(design, metrics, data, segments=segments).to_dict()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    runs = [figures(seed, args.experiments) for seed in range(args.seeds)]
    print(f"{args.experiments} simulated experiments per seed, {args.seeds} seeds")
    for name in runs[0]:
        values = np.array([run[name] for run in runs])
        print(f"  {name:<55} {values.mean():.4f}  (min {values.min():.4f}, max {values.max():.4f})")
    seconds = time_one_analysis()
    print(f"analyse_experiment, 3 arms x 2 metrics x (1 + 10 segments), to_dict: {seconds:.2f} s")


if __name__ == "__main__":
    main()
