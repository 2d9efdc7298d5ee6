"""Classifiers are looked up by name; a plugin adds a name, not a branch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from safestack.classify._protocol import Classifier
from safestack.errors import UnknownComponentError

__all__ = ["classifier_names", "create_classifier", "register_classifier"]

ClassifierFactory = Callable[..., Classifier]
F = TypeVar("F", bound=ClassifierFactory)

_REGISTRY: dict[str, ClassifierFactory] = {}


def register_classifier(name: str) -> Callable[[F], F]:
    """Register a factory under ``name`` (``vendor/name`` for third-party classifiers)."""

    def decorate(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"classifier name {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def classifier_names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_REGISTRY)


def create_classifier(name: str, **kwargs: Any) -> Classifier:
    """Build the classifier registered as ``name`` with the given arguments."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(classifier_names()) or "(none)"
        raise UnknownComponentError(f"unknown classifier {name!r}; known: {known}") from None
    return factory(**kwargs)
