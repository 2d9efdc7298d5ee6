"""Classifiers: one protocol for every detector, a registry of implementations, typed verdicts.

Built-in registry names:

* ``embedded-prompt`` (default) — trained heads over packaged embeddings; input: text.
* ``embedded-output`` — is a response harmful given its request; input: :class:`Exchange`.
* ``refusal`` — did the model comply, refuse or partly refuse; input: :class:`Exchange`.
* ``remote-moderation`` — any endpoint that speaks OpenAI's ``/v1/moderations``.
* ``llm`` — any OpenAI-compatible chat model prompted with the written policy.
* ``artist-style`` — image prompts asking for a living artist's style (rule); input: text.
* ``public-figures`` — image prompts naming a minor public figure or an opted-out person (rule);
  input: text. Both rules read the opt-outs through a :class:`NameRegistry`.
"""

from safestack.classify import faces as _faces  # noqa: F401  (registers "opt-out-faces")
from safestack.classify import llm as _llm  # noqa: F401  (registers "llm")
from safestack.classify import remote as _remote  # noqa: F401  (registers "remote-moderation")
from safestack.classify._embedding import MAX_WINDOWS, WINDOW_CHARS
from safestack.classify._protocol import Classifier, ClassifierInput, Exchange, InputKind
from safestack.classify._registry import classifier_names, create_classifier, register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.classify.embedded import (
    EmbeddedOutputClassifier,
    EmbeddedPromptClassifier,
    HeadOptions,
    RefusalDetector,
)
from safestack.classify.images import (
    ImageSafetyClassifier,
    PersonImageClassifier,
    SexualContentImageClassifier,
)
from safestack.classify.llm import LLMClassifier
from safestack.classify.remote import RemoteModerationClassifier
from safestack.classify.rules import ArtistStyleRule, NameRegistry, PublicFigureRule

__all__ = [
    "MAX_WINDOWS",
    "WINDOW_CHARS",
    "ArtistStyleRule",
    "Classifier",
    "ClassifierInput",
    "ClassifierSpec",
    "EmbeddedOutputClassifier",
    "EmbeddedPromptClassifier",
    "Exchange",
    "HeadOptions",
    "ImageSafetyClassifier",
    "InputKind",
    "LLMClassifier",
    "NameRegistry",
    "PersonImageClassifier",
    "PublicFigureRule",
    "RefusalDetector",
    "RemoteModerationClassifier",
    "SexualContentImageClassifier",
    "Verdict",
    "classifier_names",
    "create_classifier",
    "register_classifier",
]
