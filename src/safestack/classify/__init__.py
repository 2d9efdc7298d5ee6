"""Classifiers: one protocol for every detector, a registry of implementations, typed verdicts.

Built-in registry names:

* ``embedded-prompt`` (default) — trained heads over packaged embeddings; input: text.
* ``embedded-output`` — is a response harmful given its request; input: :class:`Exchange`.
* ``refusal`` — did the model comply, refuse or partly refuse; input: :class:`Exchange`.
* ``remote-moderation`` — any endpoint that speaks OpenAI's ``/v1/moderations``.
* ``llm`` — any OpenAI-compatible chat model prompted with the written policy.
"""

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
from safestack.classify.llm import LLMClassifier
from safestack.classify.remote import RemoteModerationClassifier

__all__ = [
    "MAX_WINDOWS",
    "WINDOW_CHARS",
    "Classifier",
    "ClassifierInput",
    "ClassifierSpec",
    "EmbeddedOutputClassifier",
    "EmbeddedPromptClassifier",
    "Exchange",
    "HeadOptions",
    "InputKind",
    "LLMClassifier",
    "RefusalDetector",
    "RemoteModerationClassifier",
    "Verdict",
    "classifier_names",
    "create_classifier",
    "register_classifier",
]
