"""The training loop shared by every network in :mod:`models_dl`.

Mini-batch AdamW (Loshchilov & Hutter 2019), early stopping on a held-out
validation split with the best weights restored, a progress callback, and
the device / thread policy:

* **device**: ``"auto"`` uses CUDA when present, else the CPU.
* **threads**: ``torch.set_num_threads`` is set for the duration of a fit or
  predict only and restored afterwards (changing it for good would leak into
  whatever else runs in the process). The default is **one** thread:
  OpenMP threads competing with other processes for few cores slow a fit
  down several times, and Celery runs one worker process per core, where
  one thread each is what keeps them from thrashing. Pass ``n_threads=2``
  on an otherwise idle machine with big batches, where it pays (timings in
  ``benchmarks/RESULTS.md``, training threads).
* **randomness**: initialisation, shuffling and dropout draw from the global
  torch generator inside :func:`torch.random.fork_rng`, seeded from
  ``random_state``; the caller's random state is left untouched and the same
  seed gives the same weights on the same machine and thread count.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = [
    "EarlyStopping",
    "ProgressCallback",
    "TrainingConfig",
    "TrainingProgress",
    "resolve_batch_size",
    "resolve_device",
    "resolve_learning_rate",
    "resolve_seed",
    "seeded",
    "subset_to_device",
    "torch_threads",
    "train_members",
    "train_network",
    "validation_split",
]


@dataclass
class TrainingProgress:
    """What the progress callback receives after every evaluation round.

    ``fraction`` is a monotone estimate of overall progress in ``[0, 1]``
    (over ensemble members too), suitable for a Celery task's
    ``update_state(meta=...)``.
    """

    epoch: int
    max_epochs: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    best_epoch: int
    elapsed_s: float
    member: int = 0
    n_members: int = 1
    stopped: bool = False
    fraction_done: float | None = None

    @property
    def fraction(self) -> float:
        if self.fraction_done is not None:
            return self.fraction_done
        within = 1.0 if self.stopped else self.epoch / max(self.max_epochs, 1)
        return (self.member + within) / self.n_members


ProgressCallback = Callable[[TrainingProgress], None]


@dataclass
class TrainingConfig:
    """Optimisation settings.

    ``batch_size=None`` picks :func:`resolve_batch_size` (``batch_share``
    of the rows) and ``learning_rate=None`` picks
    :func:`resolve_learning_rate` for that batch size (growing up to
    ``learning_rate_max_factor`` times the base). An "epoch" is one
    pass over the training rows, capped at ``max_steps_per_epoch`` updates
    so that on a million rows validation and early stopping still happen
    every few seconds. ``max_rows_processed`` is a compute budget: training
    stops once that many rows (summed over epochs) have gone through the
    network, i.e. after at most ``max_rows_processed / n_rows`` epochs. On
    large data the validation loss keeps creeping down for many epochs and
    it is the budget, not overfitting, that should end training; small data
    never reach it. (A cap on *updates* would not do: small data train best
    with small batches and many of them.)

    ``weight_average`` (:func:`train_members` only): the decay ``d`` of an
    exponential moving average of the weights, ``avg <- d avg + (1 - d) w``
    after every step; validation, early stopping and the restored weights
    use the average. Averaging the iterates of one run cancels much of the
    step-to-step noise an ensemble of runs would otherwise average out
    (Polyak & Juditsky 1992; Izmailov et al. 2018, "Averaging Weights Leads
    to Wider Optima"), at the price of one vector update per step.
    """

    max_epochs: int = 300
    max_rows_processed: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = 1e-3
    weight_decay: float = 1e-4
    patience: int = 20
    min_delta: float = 0.0
    max_steps_per_epoch: int = 500
    gradient_clip: float | None = 10.0
    weight_average: float | None = None
    batch_share: float = 0.01
    learning_rate_max_factor: float = 1.0


@dataclass
class _Data:
    tensors: dict[str, torch.Tensor]

    @property
    def n(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.tensors.items()}


def resolve_seed(random_state: int | None) -> int:
    """The seed of a fit: ``random_state`` itself, or a fresh one when it is ``None``."""
    if random_state is not None:
        return int(random_state)
    return int(np.random.default_rng().integers(2**31 - 1))


def subset_to_device(
    tensors: dict[str, torch.Tensor], index: np.ndarray, device: torch.device
) -> dict[str, torch.Tensor]:
    """Rows ``index`` of every tensor, moved to ``device``."""
    rows = torch.from_numpy(index)
    return {name: tensor[rows].to(device) for name, tensor in tensors.items()}


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_batch_size(n_rows: int, share: float = 0.01) -> int:
    """Default mini-batch: about ``share`` of the rows, a power of two in [64, 2048].

    Small experiments (IHDP: ~500 rows) keep the small, noisy batches that
    regularise well; a million rows get big batches that keep CPU cores busy.
    """
    target = max(n_rows * share, 1.0)
    return int(min(2048, max(64, 2 ** round(math.log2(target)))))


def resolve_learning_rate(
    batch_size: int, base: float = 1e-3, reference_batch_size: int = 128, max_factor: float = 1.0
) -> float:
    """AdamW step size: ``base * min(max_factor, batch_size / reference_batch_size)``.

    The linear scaling rule of Goyal et al. (2017), "Accurate, Large
    Minibatch SGD": a smaller batch gives a noisier gradient, so it takes a
    proportionally smaller step, and a larger one a larger step, up to
    ``max_factor`` times ``base`` (the rule breaks down for very large
    batches). ``max_factor=1`` applies it downwards only. With
    :func:`resolve_batch_size` fits on fewer than about 11 000 rows (batches
    of 64) take smaller steps. Measurements (IHDP, the demo):
    ``benchmarks/RESULTS.md``, registry default and training speed.
    """
    return base * min(max_factor, batch_size / reference_batch_size)


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Use ``n_threads`` intra-op threads inside the block (default 1), capped at the CPU count."""
    wanted = min(n_threads or 1, os.cpu_count() or 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNGs inside the block, restoring the outer state after."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def validation_split(
    n_rows: int,
    fraction: float,
    rng: np.random.Generator,
    strata: np.ndarray | None = None,
    max_rows: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Random train / validation indices, stratified on ``strata`` when given.

    Stratifying on (arm, outcome class) keeps rare arms and rare conversions
    in both parts. The validation part is capped at ``max_rows``: beyond
    that it only costs time.
    """
    if fraction <= 0:
        return np.arange(n_rows), np.array([], dtype=np.int64)
    share = min(fraction, max_rows / n_rows)
    if strata is None:
        strata = np.zeros(n_rows, dtype=np.int64)
    val_parts = []
    for level in np.unique(strata):
        members = np.flatnonzero(strata == level)
        members = members[rng.permutation(members.size)]
        take = int(round(members.size * share))
        if members.size >= 2:
            take = min(max(take, 1), members.size - 1)
        else:
            take = 0
        val_parts.append(members[:take])
    val_idx = np.sort(np.concatenate(val_parts)) if val_parts else np.array([], dtype=np.int64)
    mask = np.ones(n_rows, dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx


class EarlyStopping:
    """Stop when the validation loss has not improved by ``min_delta`` for
    ``patience`` rounds; remembers the best weights."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = math.inf
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self._bad_rounds = 0

    def update(self, loss: float, epoch: int, module: nn.Module) -> bool:
        """Record one round; return ``True`` when training should stop."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss = loss
            self.best_epoch = epoch
            self.best_state = copy.deepcopy(module.state_dict())
            self._bad_rounds = 0
            return False
        self._bad_rounds += 1
        return self._bad_rounds >= self.patience


LossFunction = Callable[
    [nn.Module, dict[str, torch.Tensor], bool], tuple[torch.Tensor, torch.Tensor]
]


def _evaluate(
    module: nn.Module, loss_fn: LossFunction, data: _Data, batch_size: int
) -> float:
    """Weighted mean of the validation criterion over the whole split."""
    module.eval()
    total = 0.0
    weight = 0.0
    with torch.no_grad():
        for start in range(0, data.n, max(batch_size, 4096)):
            index = torch.arange(start, min(start + max(batch_size, 4096), data.n))
            batch = data.batch(index)
            _, criterion = loss_fn(module, batch, False)
            w = batch["w"].sum().item()
            total += criterion.item() * w
            weight += w
    module.train()
    return total / max(weight, 1e-12)


def train_network(
    module: nn.Module,
    loss_fn: LossFunction,
    train: dict[str, torch.Tensor],
    validation: dict[str, torch.Tensor] | None,
    config: TrainingConfig,
    callback: ProgressCallback | None = None,
    member: int = 0,
    n_members: int = 1,
) -> dict[str, list[float]]:
    """Optimise ``module`` in place and return the loss history.

    ``loss_fn(module, batch, penalise)`` returns ``(objective, criterion)``:
    the objective is minimised; the criterion (the weighted factual loss,
    with no penalties) is what early stopping watches on the validation
    split, as in Shalit et al. (2017). With ``penalise=False`` the penalties
    (IPM, propensity...) may be skipped, which validation does. Every batch dict carries a weight column
    ``"w"``. Without a validation split training runs ``max_epochs``.
    """
    train_data = _Data(train)
    val_data = _Data(validation) if validation is not None and _Data(validation).n else None
    batch_size = config.batch_size or resolve_batch_size(train_data.n, config.batch_share)
    batch_size = min(batch_size, train_data.n)
    learning_rate = (
        resolve_learning_rate(batch_size, max_factor=config.learning_rate_max_factor)
        if config.learning_rate is None else config.learning_rate
    )
    device = next(module.parameters()).device
    optimiser = torch.optim.AdamW(
        module.parameters(), lr=learning_rate, weight_decay=config.weight_decay
    )
    stopper = EarlyStopping(config.patience, config.min_delta)
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    started = time.perf_counter()
    steps_per_epoch = min(math.ceil(train_data.n / batch_size), config.max_steps_per_epoch)
    order = torch.randperm(train_data.n, device=device)
    cursor = 0
    rows_processed = 0
    budget = config.max_rows_processed or math.inf
    module.train()
    for epoch in range(1, config.max_epochs + 1):
        running = 0.0
        done = 0
        for _ in range(steps_per_epoch):
            if rows_processed >= budget:
                break
            if cursor >= train_data.n:
                order = torch.randperm(train_data.n, device=device)
                cursor = 0
            index = order[cursor : cursor + batch_size]
            cursor += batch_size
            # a tiny trailing batch gives a noisy step (and breaks IPM estimates): skip it
            if index.numel() < min(batch_size, 2):
                continue
            objective, _ = loss_fn(module, train_data.batch(index), True)
            optimiser.zero_grad(set_to_none=True)
            objective.backward()
            if config.gradient_clip:
                nn.utils.clip_grad_norm_(module.parameters(), config.gradient_clip)
            optimiser.step()
            running += objective.item()
            done += 1
            rows_processed += index.numel()
        train_loss = running / max(done, 1)
        history["train_loss"].append(train_loss)
        if val_data is not None:
            val_loss = _evaluate(module, loss_fn, val_data, batch_size)
            stop = stopper.update(val_loss, epoch, module)
        else:
            val_loss, stop = math.nan, False
        history["val_loss"].append(val_loss)
        if not math.isfinite(train_loss):
            stop = True
        if rows_processed >= budget:
            stop = True
        last = stop or epoch == config.max_epochs
        if callback is not None:
            callback(
                TrainingProgress(
                    epoch=epoch,
                    max_epochs=config.max_epochs,
                    train_loss=train_loss,
                    val_loss=val_loss,
                    best_val_loss=stopper.best_loss,
                    best_epoch=stopper.best_epoch,
                    elapsed_s=time.perf_counter() - started,
                    member=member,
                    n_members=n_members,
                    stopped=last,
                )
            )
        if stop:
            break
    if stopper.best_state is not None:
        module.load_state_dict(stopper.best_state)
    module.eval()
    return history


# ------------------------------------------------------- ensembles in one pass
MemberLossFunction = Callable[
    [Any, dict[str, torch.Tensor], bool], tuple[torch.Tensor, torch.Tensor]
]


def _stacked_forward(template: nn.Module) -> Callable[..., Any]:
    """``(params, buffers, x)`` with a leading member axis -> the output with one too.

    :func:`torch.func.vmap` over :func:`torch.func.functional_call` turns
    each layer of ``n`` identically shaped networks into one batched matmul.
    The networks return a dataclass (``NetworkOutput``); vmap wants tensors,
    so the fields that are set travel as a dict and the dataclass is rebuilt.
    """
    output_type: list[type] = []

    def one(params: dict, buffers: dict, x: torch.Tensor) -> dict[str, torch.Tensor]:
        output = functional_call(template, (params, buffers), (x,))
        output_type[:] = [type(output)]
        return {f.name: getattr(output, f.name) for f in fields(output)
                if getattr(output, f.name) is not None}

    batched = vmap(one)

    def forward(params: dict, buffers: dict, x: torch.Tensor) -> Any:
        values = batched(params, buffers, x)
        return output_type[0](**values)

    return forward


def _member_slice(output: Any, member: int) -> Any:
    """One member's part of a stacked network output."""
    return replace(output, **{
        f.name: getattr(output, f.name)[member]
        for f in fields(output) if getattr(output, f.name) is not None
    })


def train_members(
    networks: Sequence[nn.Module],
    loss_fn: MemberLossFunction,
    data: dict[str, torch.Tensor],
    train_rows: Sequence[np.ndarray],
    val_rows: Sequence[np.ndarray],
    config: TrainingConfig,
    callback: ProgressCallback | None = None,
) -> list[dict[str, list[float]]]:
    """Train ``n`` networks of one shape together: one batched pass per step.

    The same result as :func:`train_network` on each member (own seed, own
    train / validation rows, own early stopping with its best weights
    restored), but every step runs the ``n`` members' layers as one batched
    matmul (Lakshminarayanan et al. 2017's deep ensemble, trained the way
    ``torch.func``'s model-ensembling recipe does). On the CPU the small
    per-member matmuls of a tabular network cost less than the Python and
    dispatch overhead around them, so ten members in one pass cost about as
    much as three one after the other (``benchmarks/RESULTS.md``).

    ``loss_fn(output, batch, penalise)`` receives the stacked output (every
    tensor with a leading member axis) and a batch of shape ``(n, rows,
    ...)`` and returns ``(objective, criterion)``, each of shape ``(n,)``.
    The members' objectives are summed: each member's parameters affect only
    its own term, so the gradient of the sum is each member's own gradient,
    and AdamW (element-wise) and the per-member gradient clipping keep them
    apart. Members that stopped early keep being updated (the batch is
    shared) but their best weights are what is restored.
    """
    n_members = len(networks)
    device = next(networks[0].parameters()).device
    params, buffers = stack_module_state(list(networks))
    forward = _stacked_forward(copy.deepcopy(networks[0]).to("meta"))
    n_train = min(len(rows) for rows in train_rows)  # members' splits differ by a few rows
    batch_size = min(config.batch_size or resolve_batch_size(n_train, config.batch_share), n_train)
    learning_rate = (
        resolve_learning_rate(batch_size, max_factor=config.learning_rate_max_factor)
        if config.learning_rate is None else config.learning_rate
    )
    optimiser = torch.optim.AdamW(
        list(params.values()), lr=learning_rate, weight_decay=config.weight_decay, foreach=True
    )
    train_index = [torch.from_numpy(rows).to(device) for rows in train_rows]
    validation = _padded_rows(val_rows, device)
    best_loss = np.full(n_members, math.inf)
    best_epoch = np.full(n_members, -1)
    bad_rounds = np.zeros(n_members, dtype=np.int64)
    stopped = np.zeros(n_members, dtype=bool)
    averaged = (
        {name: value.detach().clone() for name, value in params.items()}
        if config.weight_average else None
    )
    watched = params if averaged is None else averaged
    best = {name: value.detach().clone() for name, value in params.items()}
    histories: list[dict[str, list[float]]] = [
        {"train_loss": [], "val_loss": []} for _ in range(n_members)
    ]
    steps_per_epoch = min(math.ceil(n_train / batch_size), config.max_steps_per_epoch)
    budget = config.max_rows_processed or math.inf
    started = time.perf_counter()

    def shuffled() -> torch.Tensor:
        return torch.stack([
            rows[torch.randperm(rows.numel(), device=device)[:n_train]] for rows in train_index
        ])

    order, cursor, rows_processed = shuffled(), 0, 0
    for epoch in range(1, config.max_epochs + 1):
        running = torch.zeros(n_members, device=device)
        done = 0
        for _ in range(steps_per_epoch):
            if rows_processed >= budget:
                break
            if cursor >= n_train:
                order, cursor = shuffled(), 0
            index = order[:, cursor : cursor + batch_size]
            cursor += batch_size
            if index.shape[1] < min(batch_size, 2):
                continue
            batch = {name: tensor[index] for name, tensor in data.items()}
            objective, _ = loss_fn(forward(params, buffers, batch["x"]), batch, True)
            optimiser.zero_grad(set_to_none=True)
            objective.sum().backward()
            if config.gradient_clip:
                _clip_member_gradients(params, config.gradient_clip)
            optimiser.step()
            if averaged is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(
                        list(averaged.values()), list(params.values()), 1 - config.weight_average
                    )
            running += objective.detach()
            done += 1
            rows_processed += index.shape[1]
        train_loss = (running / max(done, 1)).cpu().numpy()
        val_loss = _evaluate_members(forward, watched, buffers, loss_fn, data, validation)
        for member in range(n_members):
            if stopped[member]:
                continue  # its history ends where it stopped, as with train_network
            histories[member]["train_loss"].append(float(train_loss[member]))
            histories[member]["val_loss"].append(float(val_loss[member]))
            if math.isnan(val_loss[member]):
                continue
            if val_loss[member] < best_loss[member] - config.min_delta:
                best_loss[member], best_epoch[member], bad_rounds[member] = val_loss[member], epoch, 0
                for name, value in watched.items():
                    best[name][member] = value.detach()[member]
            else:
                bad_rounds[member] += 1
            if bad_rounds[member] >= config.patience or not math.isfinite(train_loss[member]):
                stopped[member] = True
        last = bool(stopped.all()) or rows_processed >= budget or epoch == config.max_epochs
        if callback is not None:
            # progress: the larger of the epochs' and the compute budget's share
            within = max(epoch / config.max_epochs, min(rows_processed / budget, 1.0))
            callback(TrainingProgress(
                epoch=epoch,
                max_epochs=config.max_epochs,
                train_loss=float(np.mean(train_loss)),
                val_loss=float(np.mean(val_loss)),
                best_val_loss=float(np.mean(best_loss)),
                best_epoch=int(np.max(best_epoch)),
                elapsed_s=time.perf_counter() - started,
                member=0,
                n_members=1,
                stopped=last,
                fraction_done=1.0 if last else within,
            ))
        if last:
            break
    if validation is None:  # nothing to choose an epoch by: keep the last weights
        best = {name: value.detach() for name, value in watched.items()}
    for member, network in enumerate(networks):
        state = {name: value[member] for name, value in best.items()}
        state.update({name: value[member] for name, value in buffers.items()})
        network.load_state_dict(state)
        network.eval()
    return histories


def _padded_rows(
    rows: Sequence[np.ndarray], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Validation rows of every member as one ``(n, longest)`` index and a 0/1 mask."""
    longest = max(len(r) for r in rows)
    if longest == 0:
        return None
    index = np.zeros((len(rows), longest), dtype=np.int64)
    mask = np.zeros((len(rows), longest), dtype=np.float32)
    for member, member_rows in enumerate(rows):
        index[member, : len(member_rows)] = member_rows
        mask[member, : len(member_rows)] = 1.0
    return torch.from_numpy(index).to(device), torch.from_numpy(mask).to(device)


def _evaluate_members(
    forward: Callable[..., Any],
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    loss_fn: MemberLossFunction,
    data: dict[str, torch.Tensor],
    validation: tuple[torch.Tensor, torch.Tensor] | None,
) -> np.ndarray:
    """Each member's weighted validation criterion; NaN without validation rows."""
    n_members = next(iter(params.values())).shape[0]
    if validation is None:
        return np.full(n_members, math.nan)
    index, mask = validation
    total = torch.zeros(n_members, device=index.device)
    weight = torch.zeros(n_members, device=index.device)
    chunk = 8_192
    with torch.no_grad():
        for start in range(0, index.shape[1], chunk):
            rows = index[:, start : start + chunk]
            batch = {name: tensor[rows] for name, tensor in data.items()}
            batch["w"] = batch["w"] * mask[:, start : start + chunk]
            _, criterion = loss_fn(forward(params, buffers, batch["x"]), batch, False)
            w = batch["w"].sum(1)
            total += criterion * w
            weight += w
    return (total / weight.clamp_min(1e-12)).cpu().numpy()


def _clip_member_gradients(params: dict[str, torch.Tensor], max_norm: float) -> None:
    """:func:`torch.nn.utils.clip_grad_norm_` applied to each member on its own."""
    grads = [p.grad for p in params.values() if p.grad is not None]
    if not grads:
        return
    squared = torch.stack([g.pow(2).reshape(g.shape[0], -1).sum(1) for g in grads]).sum(0)
    scale = (max_norm / (squared.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.reshape(-1, *([1] * (g.dim() - 1))))
