"""Booleans are not numbers: a base for every pydantic model of user input.

Why: pydantic (lax mode) turns ``true`` into 1 and 1.0, so ``count: true`` silently meant one device
and ``rate_mbps: yes`` one megabit. Strict mode would also refuse YAML lists for tuples and ints for
floats, so instead one "before" validator on every field refuses a bool wherever the field's type
takes a number but not a bool (inside lists, tuples and mapping values too). Fields typed ``Any``
(plug-in parameters kept as mappings) are checked later by the model that finally validates them.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel, model_validator

from simulator.errors import InputError

_NUMBER_TYPES = (int, float)


def _members(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of a union (``X | None``, ``Union[...]``), else the annotation itself."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return tuple(m for arg in typing.get_args(annotation) for m in _members(arg))
    return (annotation,)


def _number_only(annotation: Any) -> bool:
    """True when the type takes an int or float but neither a bool nor anything at all."""
    members = _members(annotation)
    if any(m is bool or m is Any or m is object for m in members):
        return False
    return any(m in _NUMBER_TYPES for m in members)


def _find_bool(value: Any, annotation: Any, where: str = "") -> tuple[str, bool, Any] | None:
    """(relative path, the bool, the type wanted there) of a bool given where `annotation` wants a
    number, else None."""
    if isinstance(value, bool):
        return (where, value, annotation) if _number_only(annotation) else None
    for member in _members(annotation):
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if origin in (list, tuple, set, frozenset) and isinstance(value, (list, tuple)) and args:
            for i, item in enumerate(value):
                item_type = args[0] if origin is not tuple or (len(args) == 2 and args[1] is Ellipsis) else (
                    args[i] if i < len(args) else Any)
                found = _find_bool(item, item_type, f"{where}[{i}]")
                if found is not None:
                    return found
        elif origin is dict and isinstance(value, dict) and len(args) == 2:
            for key, item in value.items():
                found = _find_bool(item, args[1], f"{where}.{key}" if where else str(key))
                if found is not None:
                    return found
    return None


def _bounds(annotation: Any, metadata: list[Any]) -> str:
    """'>= 1 and <= 1000000' from a field's constraints (or those of an ``Annotated`` item type)."""
    if typing.get_origin(annotation) is typing.Annotated:
        metadata = [*metadata, *typing.get_args(annotation)[1:]]
        metadata = [m for item in metadata for m in (getattr(item, "metadata", None) or [item])]
    words = []
    for item in metadata:
        for cls, attr, word in ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="),
                                (annotated_types.Lt, "lt", "<"), (annotated_types.Le, "le", "<=")):
            if isinstance(item, cls):
                bound = getattr(item, attr)
                words.append(f"{word} {bound:g}" if isinstance(bound, float) else f"{word} {bound}")
    return " and ".join(words)


class NoBoolNumbers(BaseModel):
    """Mix-in base: a bool given for a numeric field is an error naming the field."""

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        for name, value in data.items():
            field = fields.get(name) if isinstance(name, str) else None
            if field is None or not isinstance(value, (bool, list, tuple, dict)):
                continue
            found = _find_bool(value, field.annotation)
            if found is not None:
                raise _bool_error(name, found, field.metadata)
        return data


def _bool_error(name: str, found: tuple[str, bool, Any], metadata: list[Any]) -> InputError:
    where, flag, wanted = found
    members = _members(wanted)
    kind = "an integer" if int in members and float not in members else "a number"
    bounds = _bounds(wanted, metadata if where == "" else [])
    path = f"{name}{where}" if where.startswith("[") or not where else f"{name}.{where}"
    return InputError("true/false is not a number", field=path, value=flag,
                      accepted=f"{kind}{' ' + bounds if bounds else ''} (true and false are not numbers here)")
