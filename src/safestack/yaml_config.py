"""Reading YAML files that people edit, with errors that point at the file and line.

A policy or a stack file is edited by people, so a mistake must be reported where it is, the way a
compiler does::

    policy.yaml:42: categories.3.threshold: Input should be less than or equal to 1 (got 1.5)

The YAML is parsed once into a node graph (which keeps line marks) and constructed from it with
PyYAML's safe constructors (plain data only, never arbitrary objects). The loader also rejects
duplicate keys: PyYAML silently keeps the last one, which would let a second ``threshold:`` quietly
override the first. Pydantic's error locations are then mapped back to the nodes to find the line.

A model validator that checks several fields at once can blame one of them by raising a
``PydanticCustomError("policy_rule", "{reason}", {"reason": ..., "at": (field path...)})``.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from safestack.errors import ConfigError

__all__ = ["load_yaml_model", "read_yaml_text", "yaml_model_from_text"]

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=ConfigError)

_Loc = tuple[int | str, ...]


class _DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping repeats a key (raised by :class:`_StrictLoader`)."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Hashable, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` may legitimately repeat; PyYAML resolves it
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the safe constructor reports unhashable keys itself
            if key in first:
                raise _DuplicateKeyError(
                    problem=(
                        f"duplicate key {key!r} (first defined on line "
                        f"{first[key].start_mark.line + 1}); YAML would silently keep only the "
                        "last one"
                    ),
                    problem_mark=key_node.start_mark,
                )
            first[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node graph (for line numbers) and the plain data built from it."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()
    return root, data


def _node_at(root: yaml.Node, loc: _Loc) -> yaml.Node:
    """The deepest YAML node that exists along a pydantic error location.

    A location that runs past the document (a missing field) stops at the mapping that lacks it.
    """
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(
                (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part),
                None,
            )
            if match is None:
                return node
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _model_at(root_model: type[BaseModel], loc: _Loc) -> type[BaseModel] | None:
    """The pydantic model whose fields are expected at ``loc`` (for "allowed fields" hints)."""
    annotation: Any = root_model
    for part in loc:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(part, str) or part not in annotation.model_fields:
                return None
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) in (list, tuple) and isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
        else:
            return None
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _dotted(loc: _Loc) -> str:
    return ".".join(str(part) for part in loc)


def _yaml_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _describe(root_model: type[BaseModel], error: ErrorDetails) -> tuple[str, _Loc]:
    """A one-line reason for a pydantic error, and the location of the node to blame."""
    loc: _Loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"{_dotted(loc)}: required field {loc[-1]!r} is missing", loc
    if kind == "extra_forbidden":
        model = _model_at(root_model, loc[:-1])
        fields = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        allowed = f"; allowed: {', '.join(fields)}" if fields else ""
        return f"{_dotted(loc)}: unknown field {loc[-1]!r}{hint}{allowed}", loc
    if kind == "policy_rule":  # a cross-field check: blame the field it names
        loc = loc + tuple(ctx.get("at", ()))
        return str(ctx["reason"]), loc
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":  # our validators' messages already name the bad value
        got = ""
    elif kind == "string_type" and _yaml_kind(value) == "number":
        got = f' (got the number {value!r}; quote it: "{value}")'
    elif value is None:
        got = " (got null)"
    elif isinstance(value, dict | list):
        got = ""
    elif kind.endswith("_type"):
        got = f" (got a {_yaml_kind(value)}: {value!r})"
    else:
        got = f" (got {value!r})"
    where = f"{_dotted(loc)}: " if loc else ""
    return f"{where}{message}{got}", loc


def _most_useful(errors: list[ErrorDetails]) -> ErrorDetails:
    """The error to report: pydantic's first, or the misspelt key behind a "missing" error.

    ``tittle:`` is reported as an unknown field on its own line, not as a missing ``title``.
    """
    first = errors[0]
    if first["type"] == "missing":
        parent = tuple(first["loc"])[:-1]
        for error in errors:
            if error["type"] == "extra_forbidden" and tuple(error["loc"])[:-1] == parent:
                return error
    return first


def _yaml_problem(exc: yaml.YAMLError, text: str) -> tuple[str, int | None]:
    """A one-line reason for a YAML error, and its 1-based line."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        at = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"not valid YAML: {exc.reason} (got the character #x{code:04x})", at
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"not valid YAML: {exc}", None
    line = None if exc.problem_mark is None else exc.problem_mark.line + 1
    if isinstance(exc, _DuplicateKeyError):
        return str(exc.problem), line
    reason = f"not valid YAML: {exc.problem or exc}"
    if exc.context and exc.context.startswith("while ") and exc.context_mark is not None:
        reason += f" ({exc.context} started on line {exc.context_mark.line + 1})"
    elif exc.context:  # e.g. "expected a single document in the stream", "but found another…"
        reason = f"not valid YAML: {exc.context}, {exc.problem}"
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in str(exc.problem):
        reason += "; only plain data (mappings, lists, strings, numbers) is allowed"
    return reason, line


def _needs(model: type[BaseModel]) -> str:
    required = [name for name, field in model.model_fields.items() if field.is_required()]
    if len(required) <= 1:
        return "".join(required) or "fields"
    return ", ".join(required[:-1]) + " and " + required[-1]


def yaml_model_from_text(
    text: str, model: type[M], *, what: str, path: str | None = None, error: type[E]
) -> M:
    """Parse YAML text and validate it as ``model``; every failure is an ``error`` with a line.

    ``what`` names the document in messages ("policy", "stack file"); ``path`` names its source.
    The first validation error is reported, with a count of the others.
    """
    try:
        root, data = _parse(text)
    except yaml.YAMLError as exc:
        reason, line = _yaml_problem(exc, text)
        raise error(reason, path=path, line=line) from None
    if root is None:
        raise error(f"the file is empty; a {what} needs {_needs(model)}", path=path, line=1)
    if not isinstance(data, dict):
        raise error(
            f"the top level must be a mapping with {_needs(model)}, "
            f"not {'null' if data is None else 'a ' + _yaml_kind(data)}",
            path=path,
            line=root.start_mark.line + 1,
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        reason, loc = _describe(model, _most_useful(errors))
        line = _node_at(root, loc).start_mark.line + 1
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise error(reason + more, path=path, line=line) from None


def read_yaml_text(path: str | Path, *, what: str, error: type[E]) -> str:
    """A YAML file's text; a missing, unreadable or non-UTF-8 file is an ``error`` naming it."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("no such file", path=path) from None
    except IsADirectoryError:
        raise error(f"is a directory, not a {what}", path=path) from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (bad byte at offset {exc.start})", path=path) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", path=path) from None


def load_yaml_model(path: str | Path, model: type[M], *, what: str, error: type[E]) -> M:
    """Read a YAML file and validate it as ``model``; every failure is an ``error``."""
    text = read_yaml_text(path, what=what, error=error)
    return yaml_model_from_text(text, model, what=what, path=str(path), error=error)
