"""Reading policy files, with errors at file:line (the machinery: :mod:`safestack.yaml_config`)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from safestack.errors import PolicyError
from safestack.policy._model import Policy
from safestack.yaml_config import load_yaml_model, yaml_model_from_text

__all__ = ["default_policy", "load_policy", "policy_from_yaml"]

_DEFAULT = "default.yaml"


def policy_from_yaml(text: str, *, path: str | None = None) -> Policy:
    """Parse and validate a policy from YAML text.

    ``path`` only names the source in error messages. Raises :class:`PolicyError` with the
    1-based line of the offending node for YAML syntax errors, duplicate keys, an empty or
    non-mapping document, and every validation error of :class:`Policy` (the first one is
    reported, with a count of the others).
    """
    return yaml_model_from_text(text, Policy, what="policy", path=path, error=PolicyError)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; every failure is a :class:`PolicyError`."""
    return load_yaml_model(path, Policy, what="policy file", error=PolicyError)


@functools.cache
def default_policy() -> Policy:
    """The policy that ships with safestack (``safestack/policy/default.yaml``), loaded once."""
    text = resources.files("safestack.policy").joinpath(_DEFAULT).read_text(encoding="utf-8")
    return policy_from_yaml(text, path=f"safestack/policy/{_DEFAULT}")
