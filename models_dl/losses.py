"""Loss functions: factual outcome losses, balancing penalties (IPM), the
DragonNet targeted regularisation and the DESCN entire-space and cross losses.

Raw head outputs ``out`` have a last dimension of 1 (binary: a logit;
continuous: the mean of the standardised outcome) or 3 for zero-inflated
outcomes (logit of ``P(y > 0)``, ``mu`` and raw ``sigma`` of the log-normal
positive part).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "cross_losses",
    "entire_space_loss",
    "expected_outcome",
    "factual_loss",
    "ipm_penalty",
    "link_loss",
    "link_value",
    "mmd2_linear",
    "mmd2_rbf",
    "sinkhorn_wasserstein",
    "targeted_regularization_loss",
    "ziln_negative_log_likelihood",
]


def _ziln_parts(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    logit, mu, raw_sigma = out.unbind(-1)
    sigma = F.softplus(raw_sigma) + 1e-3
    return logit, mu, sigma


def ziln_negative_log_likelihood(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-row negative log-likelihood of the zero-inflated log-normal (ZILN).

    Wang, Liu & Miao (2019), "A Deep Probabilistic Model for Customer
    Lifetime Value Prediction" (Google, arXiv:1912.07753)::

        -log L = BCE(logit, 1[y > 0])
                 + 1[y > 0] * (log y + log sigma + 0.5 log 2 pi
                               + (log y - mu)^2 / (2 sigma^2))

    The mass at zero (no purchase) and the skewed spend of buyers are modelled
    apart, so neither a squared error on the heavy tail nor a log transform
    that cannot represent zero is needed.
    """
    logit, mu, sigma = _ziln_parts(out)
    positive = (y > 0).to(out.dtype)
    classification = F.binary_cross_entropy_with_logits(logit, positive, reduction="none")
    safe_y = torch.where(y > 0, y, torch.ones_like(y))
    log_y = torch.log(safe_y)
    regression = (
        log_y + torch.log(sigma) + 0.5 * math.log(2 * math.pi) + (log_y - mu) ** 2 / (2 * sigma**2)
    )
    return classification + positive * regression


def expected_outcome(out: torch.Tensor, outcome_type: str) -> torch.Tensor:
    """``E[y | x, arm]`` on the training scale, from raw head outputs.

    binary: ``sigmoid(logit)``; continuous: the mean itself; zero-inflated:
    ``sigmoid(logit) * exp(mu + sigma^2 / 2)`` (the log-normal mean).
    """
    if outcome_type == "binary":
        return torch.sigmoid(out[..., 0])
    if outcome_type == "continuous":
        return out[..., 0]
    logit, mu, sigma = _ziln_parts(out)
    # clamp the exponent: an untrained head must not overflow float32
    return torch.sigmoid(logit) * torch.exp((mu + 0.5 * sigma**2).clamp(max=30.0))


def link_value(out: torch.Tensor) -> torch.Tensor:
    """The first raw output: the quantity the targeted fluctuation shifts."""
    return out[..., 0]


def factual_loss(out: torch.Tensor, y: torch.Tensor, outcome_type: str) -> torch.Tensor:
    """Per-row loss of the factual arm's raw output ``out`` (shape ``(..., batch, width)``).

    binary: binary cross-entropy on the logit; continuous: squared error;
    zero-inflated: :func:`ziln_negative_log_likelihood`.
    """
    if outcome_type == "binary":
        return F.binary_cross_entropy_with_logits(out[..., 0], y, reduction="none")
    if outcome_type == "continuous":
        return (out[..., 0] - y) ** 2
    return ziln_negative_log_likelihood(out, y)


# ---------------------------------------------------------------- balancing
def mmd2_linear(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Linear-kernel squared MMD: ``||mean(a) - mean(b)||^2`` (Shalit et al.'s ``mmd2_lin``)."""
    return ((a.mean(0) - b.mean(0)) ** 2).sum()


def mmd2_rbf(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Biased estimate of the squared MMD with the Gaussian kernel
    ``k(u, v) = exp(-||u - v||^2 / (2 sigma^2))`` (Gretton et al. 2012)."""
    gamma = 1.0 / (2 * sigma**2)
    k_aa = torch.exp(-gamma * torch.cdist(a, a).pow(2)).mean()
    k_bb = torch.exp(-gamma * torch.cdist(b, b).pow(2)).mean()
    k_ab = torch.exp(-gamma * torch.cdist(a, b).pow(2)).mean()
    return k_aa + k_bb - 2 * k_ab


def sinkhorn_wasserstein(
    a: torch.Tensor, b: torch.Tensor, lam: float = 10.0, iterations: int = 10
) -> torch.Tensor:
    """Entropy-regularised Wasserstein-1 distance between two point clouds.

    Cuturi (2013) Sinkhorn iterations, as used for CFR-Wass by Shalit et al.
    (2017): the cost is the Euclidean distance ``M``, the entropic strength is
    ``lam / mean(M)``, the transport plan ``T`` is computed without gradient
    and the penalty is ``sum(T * M)``, whose gradient flows through ``M`` into
    the representation. Iterations run in the log domain so that
    well-separated groups do not underflow.
    """
    cost = torch.cdist(a, b)
    with torch.no_grad():
        scale = lam / cost.mean().clamp_min(1e-8)
        log_kernel = -scale * cost
        log_a = torch.full((a.shape[0],), -math.log(a.shape[0]), device=a.device, dtype=a.dtype)
        log_b = torch.full((b.shape[0],), -math.log(b.shape[0]), device=b.device, dtype=b.dtype)
        f = torch.zeros_like(log_a)
        g = torch.zeros_like(log_b)
        for _ in range(iterations):
            f = log_a - torch.logsumexp(log_kernel + g[None, :], dim=1)
            g = log_b - torch.logsumexp(log_kernel + f[:, None], dim=0)
        plan = torch.exp(f[:, None] + log_kernel + g[None, :])
    return (plan * cost).sum()


def _ipm(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "wasserstein":
        return sinkhorn_wasserstein(a, b)
    if kind == "mmd":
        return mmd2_rbf(a, b)
    if kind == "mmd_linear":
        return mmd2_linear(a, b)
    raise ValueError(f"unknown ipm {kind!r}; use 'wasserstein', 'mmd' or 'mmd_linear'")


def ipm_penalty(
    representation: torch.Tensor,
    treatment: torch.Tensor,
    n_arms: int,
    kind: str = "wasserstein",
    max_rows: int = 256,
) -> torch.Tensor:
    """Mean IPM between the control representation and each treated arm's.

    With several arms the CFR bound applies to each (arm, control) pair, so
    the penalty averages the pairwise distances; pairs missing from the
    mini-batch are skipped. Each group is capped at its first ``max_rows``
    rows (the batch is already shuffled): the kernel and transport costs
    grow with the square of the group size, and a few hundred points
    estimate the distance well enough.
    """
    control = representation[treatment == 0][:max_rows]
    total = representation.new_zeros(())
    pairs = 0
    if control.shape[0] < 2:
        return total
    for arm in range(1, n_arms):
        treated = representation[treatment == arm][:max_rows]
        if treated.shape[0] < 2:
            continue
        total = total + _ipm(treated, control, kind)
        pairs += 1
    return total / max(pairs, 1)


# ------------------------------------------------------------------- dragon
def targeted_regularization_loss(
    outcomes: torch.Tensor,
    propensity_logits: torch.Tensor,
    epsilon: torch.Tensor,
    treatment: torch.Tensor,
    y: torch.Tensor,
    outcome_type: str,
    clip: float = 0.01,
) -> torch.Tensor:
    """Per-row targeted regularisation of DragonNet, extended to K arms.

    Shi et al. (2019), eq. (3.2): with the clever covariate
    ``H(t, x) = t / g(x) - (1 - t) / (1 - g(x))`` the fluctuated outcome
    ``Q~ = Q(t, x) + eps * H(t, x)`` is fitted to ``y``. For arms
    ``k = 1..K`` against control we use one ``eps_k`` per arm and
    ``H_k(t, x) = 1[t = k] / g_k(x) - 1[t = 0] / g_0(x)`` (the efficient
    influence function of ``E[Y(k) - Y(0)]``), which reduces to Shi et al.
    for ``K = 1``. ``g`` is the softmax propensity head, clipped to
    ``[clip, 1]``. The fluctuation acts on the first raw output (the mean,
    or the logit for binary and zero-inflated outcomes, where the loss is
    the matching cross-entropy, i.e. a logistic fluctuation as in TMLE).
    """
    g = torch.softmax(propensity_logits, dim=1).clamp_min(clip)
    rows = torch.arange(treatment.shape[0], device=treatment.device)
    q = link_value(outcomes[rows, treatment])
    treated_shift = torch.where(
        treatment > 0,
        epsilon[(treatment - 1).clamp_min(0)] / g[rows, treatment],
        torch.zeros_like(q),
    )
    control_shift = torch.where(treatment == 0, epsilon.sum() / g[:, 0], torch.zeros_like(q))
    fluctuated = q + treated_shift - control_shift
    if outcome_type == "continuous":
        return (y - fluctuated) ** 2
    target = (y > 0).to(q.dtype) if outcome_type == "zero_inflated" else y
    return F.binary_cross_entropy_with_logits(fluctuated, target, reduction="none")


# ------------------------------------------------------------------- DESCN
def link_loss(value: torch.Tensor, y: torch.Tensor, outcome_type: str) -> torch.Tensor:
    """Per-row loss of a prediction on the link scale (the first raw output).

    continuous: squared error on the mean; binary: cross-entropy on the
    logit; zero-inflated: cross-entropy of the logit of ``P(y > 0)``, the
    part of the ZILN output that a shift on the link scale describes (as in
    :func:`targeted_regularization_loss`).
    """
    if outcome_type == "continuous":
        return (value - y) ** 2
    target = (y > 0).to(value.dtype) if outcome_type == "zero_inflated" else y
    return F.binary_cross_entropy_with_logits(value, target, reduction="none")


def entire_space_loss(
    outcomes: torch.Tensor,
    propensity_logits: torch.Tensor,
    treatment: torch.Tensor,
    y: torch.Tensor,
    outcome_type: str,
) -> torch.Tensor:
    """Per-row entire-space loss of DESCN (Zhong et al. 2022, eqs. 2-4), K arms.

    Under unconfoundedness ``E[1[t = a] y | x] = pi_a(x) mu_a(x)``, a target
    defined on *every* row, so each response head also learns from the rows
    of the other arms instead of only its own (ESMM's idea, Ma et al. 2018).
    Summed over arms ``a``: binary and zero-inflated outcomes use the
    cross-entropy of the probability ``pi_a * sigmoid(logit_a)`` against
    ``1[t = a] * 1[y > 0]``; continuous outcomes the squared error of
    ``pi_a * mu_a`` against ``1[t = a] * y``.
    """
    pi = torch.softmax(propensity_logits, dim=1)
    is_arm = F.one_hot(treatment, pi.shape[1]).to(pi.dtype)
    link = link_value(outcomes)  # (batch, arms)
    if outcome_type == "continuous":
        return ((pi * link - is_arm * y[:, None]) ** 2).sum(1)
    positive = (y > 0).to(pi.dtype) if outcome_type == "zero_inflated" else y
    probability = (pi * torch.sigmoid(link)).clamp(1e-7, 1 - 1e-7)
    return F.binary_cross_entropy(probability, is_arm * positive[:, None], reduction="none").sum(1)


def cross_losses(
    outcomes: torch.Tensor,
    pseudo_effects: torch.Tensor,
    treatment: torch.Tensor,
    y: torch.Tensor,
    outcome_type: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row cross losses of DESCN's X network, K arms: ``(treated, control)``.

    With the pseudo effect ``tau'_k`` on the link scale, a row of arm ``k``
    is fitted by the *control* head shifted up, ``mu_0 + tau'_k`` (the
    reference's CrossTR), and a control row by each treated head shifted
    down, ``mu_k - tau'_k`` (CrossCR, averaged over ``k``). Like the
    X-learner's imputed effects, this ties both heads to the rows of the
    other arm. Each returned vector is zero on the rows the other term covers.
    """
    link = link_value(outcomes)  # (batch, arms)
    tau = link_value(pseudo_effects)  # (batch, arms - 1)
    rows = torch.arange(treatment.shape[0], device=treatment.device)
    arm_index = (treatment - 1).clamp_min(0)
    treated = link_loss(link[:, 0] + tau[rows, arm_index], y, outcome_type)
    control = link_loss(link[:, 1:] - tau, y[:, None].expand_as(tau), outcome_type).mean(1)
    is_treated = (treatment > 0).to(link.dtype)
    return treated * is_treated, control * (1 - is_treated)
