"""Evaluation samples from people's judgements: red teamers' labelled turns, reviewers' decisions.

Published system cards start their evidence with manual red teaming, and convert those
conversations into automated evaluations that are re-run on every change of the stack. Here a
labelled turn of a campaign conversation becomes a ``manual_redteam`` sample, and a reviewed
decision on real traffic a ``real_world`` one. Each carries what the stack answered at the time
as its recorded ``response`` (replayed, see :mod:`safestack.evals._replay`) and the person's
verdict on that answer as ground truth (:data:`~safestack.evals.HUMAN_LABELS`), so a re-run
against a later configuration shows whether a fix stops the very answer that was found: the
same conversations that found the hole prove it closed.

Only text turns become samples; image turns are labelled and counted in the campaign
dashboard, but ``safestack eval run`` evaluates text conversations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from safestack.evals._sample import Expected, Sample
from safestack.models import ChatMessage
from safestack.store import Campaign, Conversation, ExchangeOutcome, ReviewItem

__all__ = ["OUTCOME_EXPECTED", "campaign_samples", "campaign_slug", "review_samples"]

#: What a well-behaved system does with the request behind each red-team outcome.
OUTCOME_EXPECTED: dict[ExchangeOutcome, Expected] = {
    "jailbreak": "should_refuse",
    "refused_correctly": "should_refuse",
    "over_refusal": "should_comply",
    "answered_correctly": "should_comply",
}
_LICENCE = "operator's own data"


def campaign_slug(name: str) -> str:
    """The file-name form of a campaign's name; its samples' dataset is ``campaign-<slug>``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "campaign"


def campaign_samples(campaign: Campaign, conversations: Sequence[Conversation]) -> list[Sample]:
    """One ``manual_redteam`` sample per labelled text turn of the campaign's conversations.

    The sample's messages are the conversation up to that turn (earlier turns as the red teamer
    saw them: their prompt, then the stack's answer), its ``response`` the answer they labelled.
    ``jailbreak`` marks that answer a violation, ``over_refusal`` a refusal: the ground truth a
    re-run uses while the stack passes the answer through unchanged.
    """
    samples: list[Sample] = []
    dataset = f"campaign-{campaign_slug(campaign.name)}"
    for conversation in conversations:
        history: list[ChatMessage] = []
        for turn in conversation.exchanges:
            if turn.modality != "text":
                continue
            messages = [*history, ChatMessage(role="user", content=turn.prompt)]
            history = [*messages, ChatMessage(role="assistant", content=turn.response)]
            if turn.label is None:
                continue
            expected = OUTCOME_EXPECTED[turn.label.outcome]
            metadata: dict[str, Any] = {
                "replay": True,
                "campaign": campaign.id,
                "conversation": conversation.id,
                "turn": turn.turn,
                "red_teamer": conversation.account_id,
                "model": campaign.model,
                "audience": campaign.audience.value,
                "outcome": turn.label.outcome,
            }
            if expected == "should_refuse":
                metadata["response_violates"] = turn.label.outcome == "jailbreak"
            else:
                metadata["response_refused"] = turn.label.outcome == "over_refusal"
            if turn.label.note:
                metadata["note"] = turn.label.note
            samples.append(
                Sample(
                    id=f"{dataset}:{conversation.id}-{turn.turn}",
                    messages=messages,
                    category=turn.label.category,
                    expected=expected,
                    source="manual_redteam",
                    dataset=dataset,
                    licence=_LICENCE,
                    response=turn.response,
                    metadata=metadata,
                )
            )
    return samples


def review_samples(items: Sequence[ReviewItem]) -> list[Sample]:
    """One ``real_world`` sample per resolved decision item that carries a reviewer's label.

    The label (``expected``, ``category``) is what the console stored when the reviewer
    confirmed or overturned the decision: an overturned block is a ``should_comply`` sample (an
    over-refusal), an overturned answer a ``should_refuse`` one (a miss). Where the model's own
    answer is known it is replayed with the reviewer's verdict on it; a request the input layer
    blocked has no answer, and a re-run asks the configured model afresh.
    """
    samples: list[Sample] = []
    for item in items:
        label = item.label or {}
        expected = label.get("expected")
        if (
            item.kind != "decision"
            or item.status != "resolved"
            or expected not in OUTCOME_EXPECTED.values()
        ):
            continue
        details = item.details
        messages = [
            ChatMessage(role=m["role"], content=m["content"])
            for m in details.get("messages", [])
            if isinstance(m, dict) and isinstance(m.get("content"), str)
        ]
        if not any(m.role == "user" for m in messages):
            continue
        decision = details.get("decision") or {}
        answer = details.get("model_answer")
        if answer is None and decision.get("layer") != "input":
            answer = details.get("answer")
        metadata: dict[str, Any] = {
            "review_item": item.id,
            "resolution": item.resolution,
            "reasons": list(item.reasons),
            "decision_layer": decision.get("layer"),
        }
        if answer is not None:
            metadata["replay"] = True
            if expected == "should_refuse":
                metadata["response_violates"] = True
            else:
                metadata["response_refused"] = decision.get("layer") == "model"
        samples.append(
            Sample(
                id=f"review:{item.id}",
                messages=messages,
                category=label.get("category"),
                expected=expected,
                source="real_world",
                dataset="review",
                licence=_LICENCE,
                response=answer,
                metadata=metadata,
            )
        )
    return samples
