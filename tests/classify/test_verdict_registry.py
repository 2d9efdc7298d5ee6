from __future__ import annotations

import pytest

from safestack.classify import ClassifierSpec, Verdict, classifier_names, create_classifier
from safestack.classify._registry import register_classifier
from safestack.errors import SafestackError, UnknownComponentError

SPEC = ClassifierSpec(name="t", version="1")


def test_from_scores_flags_at_threshold_and_orders_by_score() -> None:
    v = Verdict.from_scores(
        {"a": 0.5, "b": 0.9, "c": 0.2, "d": 0.99}, {"a": 0.5, "b": 0.5, "c": 0.5}, SPEC
    )
    assert v.flagged and v.categories == ["b", "a"]  # "d" has no threshold: reported, not acted on
    assert v.scores["d"] == 0.99


def test_scores_are_clipped_to_unit_interval() -> None:
    v = Verdict.from_scores({"a": 1.3, "b": -0.1}, {"a": 0.5, "b": 0.5}, SPEC)
    assert v.scores == {"a": 1.0, "b": 0.0}


def test_fail_closed_is_flagged_and_says_why() -> None:
    v = Verdict.fail_closed(SPEC, "unparseable answer", categories=["hate"])
    assert v.flagged and v.error == "unparseable answer" and v.categories == ["hate"]


def test_registry_knows_the_builtins_and_explains_unknown_names() -> None:
    names = classifier_names()
    for name in ("embedded-prompt", "embedded-output", "refusal", "remote-moderation", "llm"):
        assert name in names
    with pytest.raises(UnknownComponentError, match=r"known: .*embedded-prompt") as info:
        create_classifier("nope")
    assert isinstance(info.value, SafestackError)


def test_registering_a_taken_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_classifier("embedded-prompt")(lambda **_: None)
