"""JSON Schema for tool parameters, built from a function's type hints and docstring, and a small validator
for exactly the schema subset built here (``type``, ``properties``, ``required``, ``additionalProperties``,
``items``, ``enum``, ``anyOf``).

Supported parameter types: ``str``, ``int``, ``float``, ``bool``, ``list[T]``, ``tuple[T, ...]``,
``dict[str, T]``, ``Literal[...]``, ``enum.Enum`` subclasses, ``T | None`` and ``Annotated[T, "description"]``.
Anything else is a :class:`~aoai_realtime.errors.ConfigError` at decoration time, naming the parameter.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

__all__ = ["JsonSchema", "parse_docstring", "schema_for_function", "validate"]

JsonSchema = dict[str, Any]

_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Returns?|Raises|Yields|Examples?|Notes?|See Also|Attributes)\s*:?\s*$"
)
_GOOGLE_PARAM = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_PARAM = re.compile(r"^\s*(\w+)\s*(?::\s*(.*))?$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google- or numpy-style docstring into (summary, {parameter: description})."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(lines) and not _SECTION.match(lines[i]):
        summary.append(lines[i])
        i += 1
    while i < len(lines):
        header = _SECTION.match(lines[i])
        i += 1
        if header is None:
            continue
        in_params = header.group(1) in ("Args", "Arguments", "Parameters", "Params")
        numpy = i < len(lines) and set(lines[i].strip()) == {"-"}
        if numpy:
            i += 1
        body: list[str] = []
        while i < len(lines) and not _SECTION.match(lines[i]):
            body.append(lines[i])
            i += 1
        if in_params:
            params.update(_section_params(body, numpy=numpy))
    return " ".join(" ".join(summary).split()), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _section_params(body: list[str], *, numpy: bool) -> dict[str, str]:
    """Parameter descriptions from an ``Args:`` (Google) or ``Parameters`` (numpy) section body.

    A parameter starts at the section's base indent; deeper lines continue its description. Google puts the
    first words on the name's line (``name (type): text``), numpy on the lines below ``name : type``.
    """
    pattern = _NUMPY_PARAM if numpy else _GOOGLE_PARAM
    params: dict[str, list[str]] = {}
    base = min((_indent(line) for line in body if line.strip()), default=0)
    current: str | None = None
    for line in body:
        if not line.strip():
            continue
        match = pattern.match(line)
        if _indent(line) == base and match:
            current = match.group(1).lstrip("*")
            params[current] = [] if numpy else [match.group(3).strip()]
        elif current is not None:
            params[current].append(line.strip())
    return {k: " ".join(v).strip() for k, v in params.items()}


def _schema_for_type(tp: Any, where: str) -> JsonSchema:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        schema = _schema_for_type(args[0], where)
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes:
            schema = {**schema, "description": " ".join(notes)}
        return schema
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is type(None):
        return {"type": "null"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [member.value for member in tp]
        return {**_literal_type(values), "enum": values}
    if origin is typing.Literal:
        return {**_literal_type(list(args)), "enum": list(args)}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise ConfigError(f"{where}: fixed-length tuples are not supported; use tuple[T, ...] or list[T]")
        item = args[0] if args else Any
        return {"type": "array"} if item is Any else {"type": "array", "items": _schema_for_type(item, where)}
    if origin is dict or tp is dict:
        if args and args[0] is not str:
            raise ConfigError(f"{where}: dict keys must be str (JSON object keys)")
        value = args[1] if len(args) == 2 else Any
        if value is Any:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": _schema_for_type(value, where)}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        schemas = [_schema_for_type(a, where) for a in options]
        if len(options) < len(args):
            schemas.append({"type": "null"})
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    if tp is Any:
        return {}
    raise ConfigError(
        f"{where}: type {tp!r} has no JSON Schema here; use str, int, float, bool, list, dict, Literal or an Enum"
    )


def _literal_type(values: list[Any]) -> JsonSchema:
    kinds = {type(v) for v in values}
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if len(kinds) == 1 and (kind := kinds.pop()) in names:
        return {"type": names[kind]}
    return {}


def schema_for_function(fn: Callable[..., Any], *, param_docs: dict[str, str]) -> JsonSchema:
    """The ``parameters`` object of a function tool: one property per parameter, required unless defaulted."""
    hints = typing.get_type_hints(fn, include_extras=True)
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {fn.__name__!r}: *args/**kwargs cannot be described to the model; name them")
        if name not in hints:
            raise ConfigError(f"tool {fn.__name__!r}: parameter {name!r} needs a type hint to build its schema")
        schema = _schema_for_type(hints[name], f"tool {fn.__name__!r}, parameter {name!r}")
        if name in param_docs and "description" not in schema:
            schema = {**schema, "description": param_docs[name]}
        properties[name] = schema
        if param.default is inspect.Parameter.empty:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def validate(schema: JsonSchema, value: Any, path: str = "arguments") -> list[str]:
    """Every way ``value`` breaks ``schema``, as readable messages naming the path ([] if valid)."""
    errors: list[str] = []
    if "anyOf" in schema:
        if all(validate(option, value, path) for option in schema["anyOf"]):
            errors.append(f"{path}: {value!r} matches none of the allowed types")
        return errors
    kind = schema.get("type")
    if isinstance(kind, str):
        expected = _JSON_TYPES[kind]
        # bool is an int in Python but not a JSON integer
        if not isinstance(value, expected) or (kind in ("integer", "number") and isinstance(value, bool)):
            return [f"{path}: expected {kind}, got {type(value).__name__} {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    if isinstance(value, dict):
        props: dict[str, JsonSchema] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing required property {name!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                errors.extend(validate(props[key], item, f"{path}.{key}"))
            elif extra is False:
                errors.append(f"{path}: unexpected property {key!r}")
            elif isinstance(extra, dict):
                errors.extend(validate(extra, item, f"{path}.{key}"))
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors.extend(validate(schema["items"], item, f"{path}[{index}]"))
    return errors
