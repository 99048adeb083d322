"""A GRU over each customer's event history: will this customer buy?

Input: per customer, the chronological events before the scoring date, each
a triple ``(kind, value, gap_days)``: the event kind (a label such as
``"purchase"`` or an integer id), its value (order amount, 0 for a visit)
and the days since the previous event. :class:`EventSequences` stores them
flat (CSR layout: one array per field plus row offsets) so that 100 000
customers with dozens of events each are encoded without Python loops; build
it with :meth:`EventSequences.from_lists` or, from event rows,
:meth:`EventSequences.from_frame` (which can add an "as of" marker carrying
the time since the last event, i.e. recency).

Model (:class:`EventSequenceClassifier`): kind embedding concatenated with
the standardised signed ``log1p(value)`` and ``log1p(gap_days)``, a GRU (Cho
et al. 2014) over the most recent ``max_length`` events, optionally joined
with static customer features, then an MLP to a logit; trained, early
stopped and Platt-calibrated like
:class:`~models_dl.response.PropensityToBuyClassifier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .networks import mlp
from .preprocessing import TabularPreprocessor
from .response import NeuralBinaryClassifier

__all__ = ["AS_OF_KIND", "EventSequenceClassifier", "EventSequences"]

#: Kind label of the marker :meth:`EventSequences.from_frame` appends at the scoring date.
AS_OF_KIND = "__as_of__"
# token ids: 0 padding, 1 empty history, 2 kind unseen at fit time, 3.. learned kinds
_PAD, _EMPTY, _UNKNOWN, _FIRST_KIND = 0, 1, 2, 3


@dataclass
class EventSequences:
    """Event histories of ``n`` customers in CSR layout.

    Customer ``i``'s events are rows ``offsets[i]:offsets[i + 1]`` of
    ``kinds``, ``values`` and ``gaps`` (oldest first). ``static`` optionally
    holds per-customer features (array or DataFrame, ``n`` rows).
    """

    kinds: np.ndarray
    values: np.ndarray
    gaps: np.ndarray
    offsets: np.ndarray
    static: Any | None = None

    def __post_init__(self) -> None:
        self.kinds = np.asarray(self.kinds)
        self.values = np.asarray(self.values, dtype=np.float64)
        self.gaps = np.asarray(self.gaps, dtype=np.float64)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if not (self.kinds.shape == self.values.shape == self.gaps.shape):
            raise ValueError("kinds, values and gaps must have the same length")
        if self.offsets[0] != 0 or self.offsets[-1] != self.kinds.shape[0]:
            raise ValueError("offsets must start at 0 and end at the number of events")
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must be non-decreasing")
        if self.static is not None and len(self.static) != len(self):
            raise ValueError("static features must have one row per customer")

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_lists(
        cls, histories: Sequence[Sequence[tuple[Any, float, float]]], static: Any | None = None
    ) -> EventSequences:
        """From one list of ``(kind, value, gap_days)`` triples per customer."""
        lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
        flat = [event for history in histories for event in history]
        kinds = np.array([e[0] for e in flat], dtype=object)
        values = np.array([e[1] for e in flat], dtype=np.float64)
        gaps = np.array([e[2] for e in flat], dtype=np.float64)
        return cls(kinds, values, gaps, np.r_[0, np.cumsum(lengths)], static)

    @classmethod
    def from_frame(
        cls,
        events: Any,
        customers: Sequence[Any],
        customer_col: str = "customer_id",
        kind_col: str = "kind",
        value_col: str = "value",
        time_col: str = "occurred_at",
        as_of: Any | None = None,
        static: Any | None = None,
    ) -> EventSequences:
        """From event rows (a DataFrame), in the order of ``customers``.

        ``gap_days`` is the time since the customer's previous event (0 for
        the first). With ``as_of`` (a timestamp) events at or after it are
        dropped (they are outcomes, not history) and a marker event of kind
        :data:`AS_OF_KIND` with the days since the last event is appended.
        """
        frame = events[[customer_col, kind_col, value_col, time_col]].copy()
        frame[time_col] = pd.to_datetime(frame[time_col])
        if as_of is not None:
            as_of = pd.Timestamp(as_of)
            frame = frame[frame[time_col] < as_of]
        position = {c: i for i, c in enumerate(customers)}
        frame["_row"] = frame[customer_col].map(position)
        frame = frame.dropna(subset=["_row"]).sort_values(["_row", time_col], kind="stable")
        rows = frame["_row"].to_numpy(dtype=np.int64)
        times = frame[time_col].to_numpy(dtype="datetime64[ns]")
        gap = np.zeros(len(frame))
        same = np.r_[False, rows[1:] == rows[:-1]]
        gap[same] = (times[1:] - times[:-1])[same[1:]] / np.timedelta64(1, "D")
        kinds = frame[kind_col].to_numpy(dtype=object)
        values = pd.to_numeric(frame[value_col], errors="coerce").fillna(0.0).to_numpy()
        counts = np.bincount(rows, minlength=len(customers))
        if as_of is not None:
            last = np.full(len(customers), np.nan)
            if len(frame):
                ends = np.flatnonzero(np.r_[rows[1:] != rows[:-1], True])  # each last event
                as_of_ns = np.datetime64(as_of.to_datetime64(), "ns")
                last[rows[ends]] = (as_of_ns - times[ends]) / np.timedelta64(1, "D")
            insert_at = np.cumsum(counts)  # after each customer's last event
            kinds = np.insert(kinds, insert_at, AS_OF_KIND)
            values = np.insert(values, insert_at, 0.0)
            gaps = np.insert(gap, insert_at, np.nan_to_num(last, nan=0.0))
            counts = counts + 1
            return cls(kinds, values, gaps, np.r_[0, np.cumsum(counts)], static)
        return cls(kinds, values, gap, np.r_[0, np.cumsum(counts)], static)


class _SequenceNet(nn.Module):
    def __init__(
        self,
        n_tokens: int,
        embedding_dim: int,
        hidden_size: int,
        n_static: int,
        head_layers: tuple[int, ...],
        dropout: float,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, embedding_dim, padding_idx=_PAD)
        self.gru = nn.GRU(embedding_dim + 2, hidden_size, batch_first=True)
        self.head = mlp(hidden_size + n_static, head_layers, "elu", dropout, out_features=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        summary = self.summary(batch)
        if "static" in batch:
            summary = torch.cat([summary, batch["static"]], dim=1)
        return self.head(summary)[:, 0]

    def summary(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The GRU's final hidden state: the customer's history as one vector."""
        steps = torch.cat(
            [
                self.embedding(batch["kinds"]),
                batch["values"].unsqueeze(-1),
                batch["gaps"].unsqueeze(-1),
            ],
            dim=-1,
        )
        packed = pack_padded_sequence(
            steps, batch["lengths"].cpu(), batch_first=True, enforce_sorted=False
        )
        _, hidden = self.gru(packed)
        return hidden[-1]


@dataclass(kw_only=True, eq=False, repr=False)
class EventSequenceClassifier(NeuralBinaryClassifier):
    """GRU purchase-probability model over event histories, Platt-calibrated.

    ``fit(X, y)`` and ``predict_proba(X)`` take an :class:`EventSequences`
    (or a list of ``(kind, value, gap_days)`` lists). Kind vocabulary, value
    and gap standardisation and the static-feature preprocessing are learned
    at fit time and saved with the model.

    Parameters
    ----------
    max_length:
        Most recent events kept per customer.
    embedding_dim, hidden_size:
        Kind embedding width and GRU state size.
    head_layers, dropout:
        MLP on top of the final GRU state (and the static features).
    """

    model_name: ClassVar[str] = "event_sequence"

    max_length: int = 64
    embedding_dim: int = 16
    hidden_size: int = 64
    head_layers: tuple[int, ...] = (64,)
    dropout: float = 0.1

    def embed(self, X: Any) -> np.ndarray:
        """Each customer's history as the GRU's final hidden state, (n, hidden_size).

        The representation the classifier's head reads; used as a learned
        behaviour embedding for segmentation.
        """
        self._check_fitted()
        tensors = self._encode(X)
        n = next(iter(tensors.values())).shape[0]
        out = np.empty((n, self.hidden_size), dtype=np.float32)
        network = self.network_.eval()
        with torch.no_grad():
            for start in range(0, n, 4_096):
                batch = {k: v[start:start + 4_096].to(self.device_) for k, v in tensors.items()}
                out[start:start + 4_096] = network.summary(batch).cpu().numpy()
        return out

    # ---------------------------------------------------------- encoding
    @staticmethod
    def _as_sequences(X: Any) -> EventSequences:
        return X if isinstance(X, EventSequences) else EventSequences.from_lists(X)

    def _fit_encoder(self, X: Any) -> None:
        seqs = self._as_sequences(X)
        labels = np.unique(seqs.kinds.astype(str)).tolist()
        self.kind_vocabulary_ = labels
        signed = np.sign(seqs.values) * np.log1p(np.abs(seqs.values))
        log_gap = np.log1p(np.maximum(seqs.gaps, 0.0))
        self.value_stats_ = _mean_std(signed)
        self.gap_stats_ = _mean_std(log_gap)
        if seqs.static is not None:
            self.static_preprocessor_ = TabularPreprocessor().fit(seqs.static)
            self.n_static_ = self.static_preprocessor_.n_output_features_
        else:
            self.static_preprocessor_ = None
            self.n_static_ = 0

    def _encode(self, X: Any) -> dict[str, torch.Tensor]:
        seqs = self._as_sequences(X)
        n = len(seqs)
        lengths = np.minimum(seqs.lengths, self.max_length)
        width = max(int(lengths.max()) if n else 1, 1)
        position = np.arange(width)[None, :]
        mask = position < lengths[:, None]
        # the most recent events: the last `lengths` rows of each customer's slice
        index = (seqs.offsets[1:] - lengths)[:, None] + position
        index = np.where(mask, index, 0)
        if seqs.kinds.size:
            codes = pd.Categorical(
                seqs.kinds.astype(str), categories=self.kind_vocabulary_
            ).codes.astype(np.int64)
            token_of_event = np.where(codes >= 0, codes + _FIRST_KIND, _UNKNOWN)
            signed = np.sign(seqs.values) * np.log1p(np.abs(seqs.values))
            value_of_event = (signed - self.value_stats_[0]) / self.value_stats_[1]
            gap_of_event = (
                np.log1p(np.maximum(seqs.gaps, 0.0)) - self.gap_stats_[0]
            ) / self.gap_stats_[1]
            tokens = np.where(mask, token_of_event[index], _PAD)
            values = np.where(mask, value_of_event[index], 0.0)
            gaps = np.where(mask, gap_of_event[index], 0.0)
        else:
            tokens = np.zeros((n, width), dtype=np.int64)
            values = np.zeros((n, width))
            gaps = np.zeros((n, width))
        empty = lengths == 0
        tokens[empty, 0] = _EMPTY
        encoded = {
            "kinds": torch.from_numpy(tokens.astype(np.int64)),
            "values": torch.from_numpy(values.astype(np.float32)),
            "gaps": torch.from_numpy(gaps.astype(np.float32)),
            "lengths": torch.from_numpy(np.maximum(lengths, 1).astype(np.int64)),
        }
        if self.static_preprocessor_ is not None:
            if seqs.static is None:
                raise ValueError("the model was fitted with static features; pass them too")
            encoded["static"] = torch.from_numpy(self.static_preprocessor_.transform(seqs.static))
        return encoded

    def _build_network(self) -> nn.Module:
        return _SequenceNet(
            len(self.kind_vocabulary_) + _FIRST_KIND,
            self.embedding_dim,
            self.hidden_size,
            self.n_static_,
            self.head_layers,
            self.dropout,
        )

    def _encoder_config(self) -> dict[str, Any]:
        return {
            "kind_vocabulary": self.kind_vocabulary_,
            "value_stats": list(self.value_stats_),
            "gap_stats": list(self.gap_stats_),
            "static_preprocessor": (
                self.static_preprocessor_.to_config() if self.static_preprocessor_ else None
            ),
            "n_static": self.n_static_,
        }

    def _restore_encoder(self, config: dict[str, Any]) -> None:
        self.kind_vocabulary_ = config["kind_vocabulary"]
        self.value_stats_ = tuple(config["value_stats"])
        self.gap_stats_ = tuple(config["gap_stats"])
        static = config["static_preprocessor"]
        self.static_preprocessor_ = TabularPreprocessor.from_config(static) if static else None
        self.n_static_ = config["n_static"]


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        return 0.0, 1.0
    std = float(values.std())
    return float(values.mean()), std if std > 1e-12 else 1.0
