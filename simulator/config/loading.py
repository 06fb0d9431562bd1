"""YAML → validated pydantic models, with errors a person can act on.

pydantic reports a location tuple and a message per problem; YAML reports a line and column. Both
become :class:`~simulator.errors.InputError` naming the file, the field path (``fleet[2].count``),
the offending value and what would be accepted.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from simulator.config.input_files import read_input_text
from simulator.config.validation_errors import validation_error_to_input_error
from simulator.errors import InputError

M = TypeVar("M", bound=BaseModel)


class _NoDuplicateKeys:
    """``safe_load`` that refuses a key given twice in one mapping (a mix-in for both loaders below).

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
        return super().construct_mapping(node, deep)  # type: ignore[misc]


class _Loader(_NoDuplicateKeys, yaml.SafeLoader):
    """The pure-Python parser: its messages name what it found (a tab, an alias's name), so a document
    libyaml refuses is parsed again with it for the error."""


# libyaml's parser where PyYAML was built with it (its wheels are): the same safe constructor and
# resolver, 4x faster on a 1,000-cell scenario (538 -> 124 ms) and 16x on the nine device profiles
# (60 -> 4 ms, mostly comments); BENCHMARKS.md section 3
class _FastLoader(_NoDuplicateKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The loader tried first."""


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
        return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a SafeLoader (C or Python)
    except Exception:  # noqa: BLE001 - refused: parsed again below, to say why in the Python parser's words
        pass
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
