"""Why a decision deserves a person's look: the reasons the gateway queues it for review.

Pure: it reads a :class:`Decision` and the policy, and stores nothing. The reasons are the ones
the review queue shows (``ReviewItem.reasons``), in a fixed order:

* ``under_18_block`` — a blocked request of an under-18 user: the strictest thresholds refuse the
  most, so these are where over-refusal shows first, and where a miss matters most.
* ``monitor_disagreement`` — the policy monitor ran and flagged differently from the output
  classifier: one of the two is wrong, and the case is a labelled example either way.
* ``near_threshold`` — the input or output classifier's top score was within a fraction of its
  category's threshold, on either side: the decision could have gone the other way.
"""

from __future__ import annotations

from safestack.policy import Audience, Policy
from safestack.stack._decision import Decision, LayerTrace

__all__ = ["REVIEW_REASONS", "review_reasons"]

#: Every reason :func:`review_reasons` gives, in the order it gives them.
REVIEW_REASONS = ("under_18_block", "monitor_disagreement", "near_threshold")

_THRESHOLDED_LAYERS = ("input", "output")


def review_reasons(
    decision: Decision,
    policy: Policy,
    *,
    under_18_blocks: bool = True,
    monitor_disagreements: bool = True,
    near_threshold: float = 0.15,
) -> list[str]:
    """The reasons to queue ``decision`` for review (empty: nothing worth a look).

    ``near_threshold`` is a fraction of the threshold (0.15: a top score between 0.85x and 1.15x
    of its category's threshold for the decision's audience); 0 turns that reason off. A layer
    that failed (its trace has an ``error``) gives no near-threshold or disagreement reason: its
    scores are not a judgement, and the failure itself already decided how the request went.
    """
    if not 0.0 <= near_threshold < 1.0:
        raise ValueError(f"near_threshold is a fraction in [0, 1), not {near_threshold!r}")
    reasons: list[str] = []
    if under_18_blocks and decision.blocked and decision.audience is Audience.UNDER_18:
        reasons.append("under_18_block")
    if monitor_disagreements and _monitor_disagrees(decision.trace):
        reasons.append("monitor_disagreement")
    if near_threshold > 0 and _near_threshold(decision, policy, near_threshold):
        reasons.append("near_threshold")
    return reasons


def _judged(trace: list[LayerTrace], layer: str) -> LayerTrace | None:
    return next((t for t in trace if t.layer == layer and t.ran and t.error is None), None)


def _monitor_disagrees(trace: list[LayerTrace]) -> bool:
    monitor, output = _judged(trace, "monitor"), _judged(trace, "output")
    return monitor is not None and output is not None and monitor.flagged != output.flagged


def _near_threshold(decision: Decision, policy: Policy, fraction: float) -> bool:
    """Whether any input or output check's top score/threshold ratio is within ``fraction`` of 1.

    The top ratio is what decides a layer (the output layer's monitor trigger reads it the same
    way), so a request blocked clearly for one category is not queued because another category
    happened to sit near its own threshold. Scores of categories the policy does not threshold
    (a hash match, a refusal label) are not ratios and are left out.
    """
    thresholds = policy.thresholds(decision.audience)
    for trace in decision.trace:
        if trace.layer not in _THRESHOLDED_LAYERS or not trace.ran or trace.error is not None:
            continue
        ratios = [s / thresholds[c] for c, s in trace.scores.items() if thresholds.get(c)]
        if ratios and abs(max(ratios) - 1.0) <= fraction:
            return True
    return False
