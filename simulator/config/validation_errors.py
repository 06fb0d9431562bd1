"""pydantic's validation errors → one :class:`~simulator.errors.InputError` a person can act on.

pydantic reports a location tuple and a message per problem. This turns them into the field path a
user typed (``fleet[2].count``, discriminated unions and aliases resolved against the data), the
offending value, and what would be accepted (from the error's context or the field's description).
Apart from YAML loading (:mod:`simulator.config.loading`, which re-exports these names) because it is
a job of its own: reading a model's structure, not a file.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from simulator.errors import InputError


def _user_path(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """The part of a pydantic location a person wrote: union and validator tags dropped.

    pydantic inserts the tag of a union member into locations (``availability.churn.mean_online_s``,
    ``blocks.int``). Walking the document alongside tells them apart: a tag is a name that cannot be
    followed in the data — except as the last part under a mapping, which is a missing or unknown key.
    """
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out.append(part)
            node = node[part] if isinstance(node, (list, tuple)) and -len(node) <= part < len(node) else ...
            continue
        text = str(part)
        if text.startswith("function-") or ("[" in text and text.endswith("]")):
            continue  # a validator or parametrised-type tag
        if node is ...:
            out.append(part)  # lost track of the document: keep what pydantic says
        elif isinstance(node, dict):
            if part in node:
                out.append(part)
                node = node[part]
            elif i == len(loc) - 1:
                out.append(part)  # a missing or unknown key
            # else: a union tag between a mapping and its fields
        # else: a union member's type name under a scalar or list value
    return tuple(out)


def field_path(loc: tuple[Any, ...], data: Any = ...) -> str:
    """Render a location as ``fleet[2].count`` (tags dropped when the document is given)."""
    parts = _user_path(loc, data) if data is not ... else loc
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if text.startswith("function-") or "[" in text and text.endswith("]") and not out:
                continue
            out += ("." if out else "") + text
    return out or "(top level)"


def join_field(prefix: str | None, field: str | None) -> str | None:
    """``fleet[0]`` + ``count`` → ``fleet[0].count``; a field already starting with the prefix is kept."""
    if not prefix or prefix == "(top level)":
        return field
    if not field or field == "(top level)":
        return prefix
    if field == prefix or field.startswith((prefix + ".", prefix + "[")):
        return field
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ...
    return node


_TYPE_WORDS = {
    "int": "an integer", "float": "a number", "string": "text", "str": "text", "bool": "true or false",
    "dict": "a mapping", "list": "a list", "tuple": "a list", "model": "a mapping", "model_attributes": "a mapping",
    "none_required": "null", "literal": "one of the listed values", "set": "a list", "bytes": "text",
}


def _number(value: Any) -> str:
    """0.0 → 0, 1e7 → 10000000, 0.5 → 0.5: bounds as a person would write them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _accepted_for(err: dict[str, Any]) -> str | None:
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return None
    if "expected" in ctx:
        return str(ctx["expected"])
    if "expected_tags" in ctx:
        return f"{ctx.get('discriminator', 'kind')} one of {ctx['expected_tags']}"
    if kind == "union_tag_not_found":
        return f"a mapping with a {ctx.get('discriminator', 'kind')} key"
    if kind == "too_short" and "min_length" in ctx:
        n = ctx["min_length"]
        return f"at least {n} item{'s' if n != 1 else ''}"
    if kind == "too_long" and "max_length" in ctx:
        n = ctx["max_length"]
        return f"at most {n} item{'s' if n != 1 else ''}"
    if kind == "string_pattern_mismatch" and "pattern" in ctx:
        return f"text matching {ctx['pattern']}"
    bounds = [f"{word} {_number(ctx[key])}" for key, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
              if key in ctx]
    if bounds:
        return "a number " + " and ".join(bounds)
    if kind == "finite_number":
        return "a finite number"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind.endswith("_from_float"):
        base = kind.removesuffix("_parsing").removesuffix("_type").removesuffix("_from_float")
        return _TYPE_WORDS.get(base, base.replace("_", " "))
    return None


def _field_description(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str | None:
    """The schema's description of the field at `loc`, to say what a missing field wants."""
    if model is None or not loc:
        return None
    parent = _model_at(model, loc[:-1])
    fields = getattr(parent, "model_fields", None) or {}
    info = fields.get(loc[-1])
    if info is None:
        return None
    if info.description:
        return str(info.description)
    inner = _inner_model(info.annotation)
    if inner is not None:
        return f"a mapping with the keys of {inner.__name__}"
    return _TYPE_WORDS.get(getattr(info.annotation, "__name__", ""))


def validation_error_to_input_error(
    exc: ValidationError, data: Any, file: str | Path | None, model: type[BaseModel] | None = None
) -> InputError:
    """Turn the first problem of a pydantic ValidationError into an InputError.

    The first problem is the one a person fixes first; listing twenty at once buries it. The count of
    the others is appended so nothing is hidden. A union reports one problem per member at the same
    place; those are one problem, whose accepted forms are joined with "or".
    """
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = _user_path(tuple(err.get("loc", ())), data)
    path = field_path(loc)
    same = [e for e in errors if _user_path(tuple(e.get("loc", ())), data) == loc]
    others = len(errors) - len(same)
    value = err.get("input", _lookup(data, loc))
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    accepted_forms = [a for a in dict.fromkeys(_accepted_for(e) for e in same) if a]
    accepted = " or ".join(accepted_forms) or None
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, InputError):
        # raised by a validator: its field is relative to where the validator sits (a node of the
        # document, so a union tag pydantic left at the end of the location is dropped)
        while loc and isinstance(loc[-1], str) and _lookup(data, loc) is ...:
            loc = loc[:-1]
        inner_field = join_field(field_path(loc), inner.field)
        out = InputError(
            inner.problem, file=inner.file or file, field=inner_field,
            value=inner.value, accepted=inner.accepted,
        )
        if others:
            out.problem += f" ({others} more problem{'s' if others > 1 else ''} after this one)"
        return out
    if err.get("type") == "extra_forbidden":
        parent = _lookup_model_fields(model, loc[:-1], data)
        msg = f"unknown key '{loc[-1]}'"
        accepted = f"one of {', '.join(parent)}" if parent else "no further keys here"
    elif err.get("type") == "missing":
        msg = "this required field is missing"
        value = ...
        description = _field_description(model, loc)
        accepted = f"add '{loc[-1]}'" + (f": {description}" if description else "")
    if accepted is None:
        accepted = "see `fleetsim schema` for this field"
    if others:
        msg += f" ({others} more problem{'s' if others > 1 else ''} after this one)"
    return InputError(msg, file=file, field=path, value=value, accepted=accepted)


def _model_at(model: type[BaseModel] | None, loc: tuple[Any, ...], data: Any = ...) -> Any:
    """The pydantic model that validates the node at `loc` (None when it is not a model).

    Where a field takes one of several models (``availability``: always | churn | trace), the one
    whose fields cover most keys of the document's node is meant.
    """
    current: Any = model
    node = data
    mapping_key_next = False
    for part in loc:
        if current is None:
            return None
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else ...
        if isinstance(part, int):
            continue
        if mapping_key_next:  # a user-chosen key of a mapping of models (access_points.<name>)
            mapping_key_next = False
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        annotation = fields[part].annotation
        mapping_key_next = typing.get_origin(annotation) is dict
        current = _best_model(_inner_models(annotation), node)
    return current


def _has(node: dict[Any, Any] | list[Any], part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and -len(node) <= part < len(node)


def _best_model(models: list[type[BaseModel]], node: Any) -> Any:
    if not models:
        return None
    if len(models) == 1 or not isinstance(node, dict):
        return models[0]
    return max(models, key=lambda m: sum(k in m.model_fields for k in node))


def _lookup_model_fields(model: type[BaseModel] | None, loc: tuple[Any, ...], data: Any = ...) -> list[str]:
    """Names of the fields accepted at `loc` in `model`, for 'unknown key' messages."""
    current = _model_at(model, loc, data)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _inner_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (``X``, ``X | None``, ``list[X]``, ``dict[str, X]``, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(m for m in _inner_models(arg) if m not in found)
    return found


def _inner_model(annotation: Any) -> Any:
    models = _inner_models(annotation)
    return models[0] if models else None
