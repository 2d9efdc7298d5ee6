"""Models are looked up by name; a plugin adds a name, not a branch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from safestack.errors import UnknownComponentError
from safestack.models._protocol import ModelAdapter

__all__ = ["create_model", "model_names", "register_model"]

ModelFactory = Callable[..., ModelAdapter]
F = TypeVar("F", bound=ModelFactory)

_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[F], F]:
    """Register a factory under ``name`` (``vendor/name`` for third-party adapters)."""

    def decorate(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model name {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def model_names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> ModelAdapter:
    """Build the model registered as ``name`` with the given arguments."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(model_names()) or "(none)"
        raise UnknownComponentError(f"unknown model {name!r}; known: {known}") from None
    return factory(**kwargs)
