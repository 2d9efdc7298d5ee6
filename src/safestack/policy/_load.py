"""Reading policy files, with errors that point at the file and line.

A policy is edited by people, so a mistake must be reported where it is: ``policy.yaml:42:
categories.3.threshold: Input should be less than or equal to 1 (got 1.5)``. YAML is parsed
with a safe loader that also rejects duplicate keys (PyYAML silently keeps the last one, which
would let a second ``threshold:`` quietly override the first).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from safestack.errors import PolicyError
from safestack.policy._model import Policy

__all__ = ["default_policy", "load_policy", "policy_from_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise PolicyError(
                    f"duplicate key {key!r} (first defined on line {seen[key]})", line=line
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _node_at(root: yaml.Node, loc: tuple[int | str, ...]) -> yaml.Node:
    """The deepest YAML node that exists along a pydantic error location."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                return node  # e.g. a missing field: point at the mapping that lacks it
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _describe(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{loc}: required field is missing"
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown field"
    shown = error.get("input")
    suffix = "" if isinstance(shown, dict | list) or shown is None else f" (got {shown!r})"
    return f"{loc}: {message}{suffix}" if loc else f"{message}{suffix}"


def policy_from_yaml(text: str, *, path: str | None = None) -> Policy:
    """Parse and validate a policy from YAML text; ``path`` is only used in messages."""
    try:
        root = yaml.compose(text, Loader=_StrictLoader)
        data = yaml.load(text, Loader=_StrictLoader)
    except PolicyError as exc:
        raise PolicyError(exc.reason, path=path, line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(f"not valid YAML: {problem}", path=path, line=line) from None
    if root is None or data is None:
        raise PolicyError(
            "the file is empty; a policy needs name, version, description and categories",
            path=path,
            line=1,
        )
    if not isinstance(data, dict):
        raise PolicyError(
            f"the top level must be a mapping (name, version, description, categories), "
            f"not a {type(data).__name__}",
            path=path,
            line=root.start_mark.line + 1,
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        node = _node_at(root, tuple(first["loc"]))
        line = node.start_mark.line + 1
        duplicate = re.search(r"category id '([^']+)' appears more than once", str(first["msg"]))
        if duplicate:  # a policy-level check: point at the second occurrence
            line = _second_id_line(root, duplicate.group(1)) or line
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise PolicyError(_describe(first) + more, path=path, line=line) from None


def _second_id_line(root: yaml.Node, category_id: str) -> int | None:
    categories = _node_at(root, ("categories",))
    if not isinstance(categories, yaml.SequenceNode):
        return None
    seen = 0
    for item in categories.value:
        node = _node_at(item, ("id",))
        if isinstance(node, yaml.ScalarNode) and node.value == category_id:
            seen += 1
            if seen == 2:
                return int(node.start_mark.line) + 1
    return None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("no such file", path=path) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 text (byte {exc.start})", path=path) from None
    except OSError as exc:
        raise PolicyError(f"cannot read: {exc.strerror}", path=path) from None
    return policy_from_yaml(text, path=str(path))


@functools.cache
def default_policy() -> Policy:
    """The policy that ships with safestack (``policy/default.yaml``), loaded once."""
    text = resources.files("safestack.policy").joinpath("default.yaml").read_text("utf-8")
    return policy_from_yaml(text, path="safestack/policy/default.yaml")
