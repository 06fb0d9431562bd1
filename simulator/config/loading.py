"""YAML → validated pydantic models, with errors a person can act on.

pydantic reports a location tuple and a message per problem; YAML reports a line and column. Both
become :class:`~simulator.errors.InputError` naming the file, the field path (``fleet[2].count``),
the offending value and what would be accepted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from simulator.errors import InputError

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[Any, ...]) -> str:
    """Render a pydantic location tuple as ``fleet[2].count``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # pydantic adds tags for unions and function validators; they are not user fields
            text = str(part)
            if text.startswith("function-") or "[" in text and text.endswith("]") and not out:
                continue
            out += ("." if out else "") + text
    return out or "(top level)"


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ...
    return node


def _accepted_for(err: dict[str, Any]) -> str | None:
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return None
    if "expected" in ctx:
        return str(ctx["expected"])
    for key, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in ctx:
            return f"a number {word} {ctx[key]}"
    if kind == "finite_number":
        return "a finite number"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return kind.replace("_parsing", "").replace("_type", "").replace("_", " ")
    return None


def validation_error_to_input_error(
    exc: ValidationError, data: Any, file: str | Path | None, model: type[BaseModel] | None = None
) -> InputError:
    """Turn the first problem of a pydantic ValidationError into an InputError.

    The first problem is the one a person fixes first; listing twenty at once buries it. The count of
    the others is appended so nothing is hidden.
    """
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = tuple(err.get("loc", ()))
    path = field_path(loc)
    value = err.get("input", _lookup(data, loc))
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    accepted = _accepted_for(err)
    if err.get("type") == "extra_forbidden":
        parent = _lookup_model_fields(model, loc[:-1])
        msg = f"unknown key '{loc[-1]}'"
        accepted = f"one of {', '.join(parent)}" if parent else None
        value = ...
    elif err.get("type") == "missing":
        msg = "this required field is missing"
        value = ...
    if len(errors) > 1:
        msg += f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} after this one)"
    return InputError(msg, file=file, field=path, value=value, accepted=accepted)


def _lookup_model_fields(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """Names of the fields accepted at `loc` in `model`, for 'unknown key' messages."""
    if model is None:
        return []
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = _inner_model(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file with ``safe_load``; a missing file or a syntax error becomes an InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=p, accepted="a path to an existing YAML file")
    if p.is_dir():
        raise InputError("is a folder, not a file", file=p, accepted="a path to a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", file=p, accepted="a UTF-8 YAML file") from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", file=p) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(
            f"is not valid YAML: {problem} at {where}", file=p, accepted="YAML 1.1 (safe subset)"
        ) from None


def validate_data(data: Any, model: type[M], file: str | Path | None = None) -> M:
    """Validate already-parsed data against `model`, raising InputError on the first problem."""
    if not isinstance(data, dict):
        raise InputError(
            "the document must be a mapping of keys to values",
            file=file,
            value=data,
            accepted=f"a YAML mapping with the keys of {model.__name__}",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, data, file, model) from None
    except InputError as exc:
        raise exc.with_file(file) if file else exc


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    """Read `path` and validate it as `model`."""
    return validate_data(read_yaml(path), model, file=path)


def check_finite(value: float, name: str) -> float:
    """Reject NaN and infinities, which pydantic's gt/ge checks let through for floats."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return value
