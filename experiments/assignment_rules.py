"""The one assignment decision: a pure, vectorised function, no database.

Every path that assigns (one customer for a live CRM call, a list of CRM ids,
a whole segment) gathers each customer's facts, calls ``assignment_decide``
and writes the rows it says to write. The rules, in the order they apply;
the first that says no gives the reason:

1. a stored assignment wins, whatever else has changed since (weights,
   status, segment, consent): an assignment, once made, is never reshuffled
   and the answer stays the stored arm;
2. the experiment must be running;
3. the customer must be in the eligibility segment (evaluated as of now by
   the caller);
4. the customer must fall in the traffic sample: ``u_traffic < fraction``
   (experiments.hashing);
5. mutual exclusion: no assignment in another experiment of the same layer;
6. consent: without marketing consent a customer is not enrolled in an
   experiment that has any contact arm. Sending them all to control instead
   would make control differ from treatment by consent, biasing the effect.

Whoever passes all six gets ``choose_arm`` (experiments.hashing). Rules 1
and 2 come in this order because that is what a single customer gets: a
customer asking again after the experiment stopped still hears their arm.

Reasons are small integer codes (``Reason``); their words live in
``REASON_TEXT`` only, and ``reason_text`` fills in the experiment's details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from experiments.hashing import choose_arms, in_traffic_many


class Reason(IntEnum):
    ASSIGNED = 0  # passes every rule: the arm is new, to be written
    ALREADY_ASSIGNED = 1
    NOT_RUNNING = 2
    NOT_ELIGIBLE = 3
    OUTSIDE_TRAFFIC = 4
    OTHER_LAYER = 5
    NO_CONSENT = 6


REASON_TEXT: dict[Reason, str] = {
    Reason.ASSIGNED: "assigned",
    Reason.ALREADY_ASSIGNED: "already assigned",
    Reason.NOT_RUNNING: "experiment is {status}, not running",
    Reason.NOT_ELIGIBLE: "not in eligibility segment {segment}",
    Reason.OUTSIDE_TRAFFIC: "outside the experiment's traffic sample",
    Reason.OTHER_LAYER: "already in experiment {other} of layer {layer}",
    Reason.NO_CONSENT: "no marketing consent",
}


@dataclass(frozen=True)
class ExperimentState:
    """What the rules need to know of the experiment; arms in a fixed order."""

    status: str
    running: bool
    salt: str
    traffic_fraction: float
    weights: tuple[float, ...]
    any_arm_contacts: bool
    segment_key: str = ""  # the eligibility segment, for the reason's words
    layer: str = ""


class Decisions(NamedTuple):
    arm: np.ndarray  # int64: index into the state's arms, -1 for none
    reason: np.ndarray  # int8: a Reason


def assignment_decide(
    *, state: ExperimentState, external_ids: Sequence[str], consent: np.ndarray,
    stored_arm: np.ndarray, eligible: np.ndarray, other_layer: np.ndarray,
) -> Decisions:
    """Each customer's arm (or -1) and reason, by the rules in the module docstring.

    Per customer, aligned arrays: ``external_ids`` (the CRM ids hashed),
    ``consent`` (marketing consent), ``stored_arm`` (index of the stored
    assignment's arm, -1 for none), ``eligible`` (in the eligibility
    segment; all true when there is none) and ``other_layer`` (assigned in
    another experiment of this layer; all false without a layer). Hashes
    are computed only for the customers that reach the rule needing them.
    """
    n = len(external_ids)
    consent, eligible, other_layer = (np.asarray(a, dtype=bool).reshape(n)
                                      for a in (consent, eligible, other_layer))
    stored_arm = np.asarray(stored_arm, dtype=np.int64).reshape(n)
    arm = np.where(stored_arm >= 0, stored_arm, -1)
    reason = np.full(n, Reason.ASSIGNED, dtype=np.int8)
    reason[stored_arm >= 0] = Reason.ALREADY_ASSIGNED
    open_ = stored_arm < 0

    def refuse(mask: np.ndarray, why: Reason) -> None:
        hit = open_ & mask
        reason[hit] = why
        open_[hit] = False

    if not state.running:
        refuse(open_, Reason.NOT_RUNNING)
    refuse(~eligible, Reason.NOT_ELIGIBLE)
    ids = np.asarray(external_ids, dtype=object).reshape(n)
    if open_.any():
        inside = np.zeros(n, dtype=bool)
        inside[open_] = in_traffic_many(state.salt, ids[open_], state.traffic_fraction)
        refuse(~inside, Reason.OUTSIDE_TRAFFIC)
    refuse(other_layer, Reason.OTHER_LAYER)
    if state.any_arm_contacts:
        refuse(~consent, Reason.NO_CONSENT)
    if open_.any():
        arm[open_] = choose_arms(state.salt, ids[open_], state.weights)
    return Decisions(arm, reason)


def reason_text(reason: int, state: ExperimentState, *, other_experiment: str = "") -> str:
    """The words for a reason code; ``other_experiment`` is the layer rival's key."""
    return REASON_TEXT[Reason(reason)].format(
        status=state.status, segment=state.segment_key, layer=state.layer,
        other=other_experiment)
