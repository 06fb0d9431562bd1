"""YAML → validated pydantic models, with errors a person can act on.

pydantic reports a location tuple and a message per problem; YAML reports a line and column. Both
become :class:`~simulator.errors.InputError` naming the file, the field path (``fleet[2].count``),
the offending value and what would be accepted.
"""

from __future__ import annotations

import copy
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from simulator.config.input_files import read_input_text
from simulator.errors import InputError

M = TypeVar("M", bound=BaseModel)


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


class _Loader(yaml.SafeLoader):
    """``safe_load`` that refuses a key given twice in one mapping.

    Plain YAML keeps the last of two equal keys, so a second ``fleet:`` would silently drop the first
    one's devices. Keys merged in with ``<<`` may still be overridden, as YAML intends.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: the base class reports it with its position
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found the key {key!r} twice (first on line {first})", key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file safely; a missing file, a device, an oversized file, a syntax error or an odd
    value becomes an InputError."""
    p = Path(path)
    return parse_yaml(read_input_text(p, "a path to a YAML file"), p)


MAX_DOCUMENT_NODES = 1_000_000


def _expanded_size(node: Any, seen: dict[int, int], path: set[int]) -> int:
    """Values in the document once aliases are expanded (shared parts counted each time they appear)."""
    if not isinstance(node, (dict, list)):
        return 1
    key = id(node)
    if key in path:
        raise InputError("is not valid YAML for fleetsim: an alias refers to a value that contains it",
                         accepted="YAML without self-referencing anchors (*name inside &name)")
    if key in seen:
        return seen[key]
    path.add(key)
    children = [v for kv in node.items() for v in kv] if isinstance(node, dict) else node
    total = 1
    for child in children:
        total += _expanded_size(child, seen, path)
        if total > MAX_DOCUMENT_NODES:
            break
    path.discard(key)
    seen[key] = total
    return total


def parse_yaml(text: str, file: str | Path | None = None) -> Any:
    """Parse YAML text (see :func:`read_yaml`).

    Anchors and aliases are allowed, but a document that refers to itself, or whose aliases expand
    to millions of values (a "billion laughs"), is refused before anything walks it.
    """
    data = _parse(text, file)
    try:
        size = _expanded_size(data, {}, set())
    except InputError as err:
        raise err.with_file(file) if file else err
    except RecursionError:
        size = MAX_DOCUMENT_NODES + 1
    if size > MAX_DOCUMENT_NODES:
        raise InputError(f"is too large: its aliases expand to more than {MAX_DOCUMENT_NODES:,} values", file=file,
                         accepted="a scenario-sized YAML document (anchors are fine; exponential nesting is not)")
    return data


def _parse(text: str, file: str | Path | None) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(
            f"is not valid YAML: {problem} at {where}", file=file, accepted="YAML 1.1 (safe subset)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - whatever PyYAML trips on, the cause is the text it was given
        # e.g. a date-like value that is no date (2001-13-45), an empty `!!float`, nesting too deep
        raise InputError(
            f"is not valid YAML: a value cannot be read ({type(exc).__name__}: {exc})", file=file,
            accepted="YAML 1.1 (safe subset); quote values that look like dates or numbers but are text",
        ) from None


def validate_data(data: Any, model: type[M], file: str | Path | None = None) -> M:
    """Validate already-parsed data against `model`, raising InputError on the first problem."""
    if data is None and file is not None:
        raise InputError("the file is empty", file=file, accepted=f"a YAML mapping with the keys of {model.__name__}")
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
    except RecursionError:
        raise InputError("the document nests too deeply", file=file,
                         accepted=f"a YAML mapping with the keys of {model.__name__}") from None


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    """Read `path` and validate it as `model`."""
    return validate_data(read_yaml(path), model, file=path)


def check_finite(value: float, name: str) -> float:
    """Reject NaN and infinities, which pydantic's gt/ge checks let through for floats."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return value


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key, recursively; anything else (numbers, lists) replaces the base value.

    Copies throughout, so neither input is ever changed (presets and loaded profiles are shared)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)
