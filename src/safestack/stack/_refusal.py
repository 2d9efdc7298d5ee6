"""The refusal the stack returns: what is not allowed, and what the user can ask instead.

A bare "I can't help with that" teaches the user nothing and reads as arbitrary. The message is
written from the policy itself — the category's title, the clause that applies, and the category's
own "allowed" bullets as suggestions — so it changes when the policy does, and it is never empty.
"""

from __future__ import annotations

import contextlib

from safestack.policy import Audience, Policy

__all__ = ["refusal_message", "unavailable_message"]

_SUGGESTIONS = 2


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def refusal_message(
    policy: Policy,
    categories: list[str],
    *,
    audience: Audience = Audience.ADULT,
    clause: str | None = None,
    reason: str | None = None,
) -> str:
    """A policy-aware refusal for a request or answer flagged under ``categories``.

    ``clause`` (a clause id) is quoted when given, otherwise the category's first disallowed rule.
    ``reason`` replaces the category part when no category applies (e.g. a check that failed).
    """
    known = [c for c in categories if c in policy.category_ids]
    if not known:
        why = reason or "it could not be checked against our content policy"
        return f"I can't help with this request: {why}. Please rephrase it or try again later."
    category = policy.category(known[0])
    rule = category.disallowed[0]
    if clause is not None:
        with contextlib.suppress(KeyError):  # a clause of another policy: keep the first rule
            rule = policy.clause(clause).text
    parts = [
        f"I can't help with this: it falls under our policy on {category.title.lower()}, "
        f"which does not allow {_sentence(rule)}."
    ]
    if audience is Audience.UNDER_18:
        parts.append("Some topics have stricter rules for users under 18.")
    if category.allowed:
        ideas = "; ".join(_sentence(a) for a in category.allowed[:_SUGGESTIONS])
        parts.append(f"I can help with related requests, for example: {ideas}.")
    return " ".join(parts)


def unavailable_message(error: str) -> str:
    """What the user reads when the model gave no answer.

    The error's detail (an upstream URL, a status) is for the operator's log and the decision,
    not for the user; only the kind of failure shows.
    """
    if error.startswith("NoRecordingError"):
        return (
            "The recorded-responses model has no recorded answer for this request. It replays "
            "real completions from public datasets; configure a live model to answer anything."
        )
    return "Sorry, no answer could be produced right now. Please try again later."
