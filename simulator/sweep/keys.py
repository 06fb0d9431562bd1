"""Dotted scenario keys: ``algorithm.aggregation.k``, ``fleet[0].count``, ``workload.partition.alpha``.

A sweep names the scenario fields it varies with these keys. They are parsed into a path of mapping
keys (str) and list indices (int) and written into a plain copy of the base scenario mapping; the
result is then validated as a whole :class:`~simulator.config.scenario.Scenario`, so whether a key
may exist is decided by the schema, not here.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from simulator.errors import InputError

KeyPath = tuple[str | int, ...]

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]*)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")


def parse_key(key: str, *, file: str | None = None, field: str | None = None) -> KeyPath:
    """``"fleet[0].count"`` → ``("fleet", 0, "count")``; InputError on anything else."""
    if not isinstance(key, str) or not key:
        raise InputError("a sweep key must be a non-empty dotted scenario key", file=file, field=field,
                         value=key, accepted="e.g. algorithm.name, fleet[0].count, workload.partition.alpha")
    path: list[str | int] = []
    for segment in key.split("."):
        match = _SEGMENT.match(segment)
        if not match:
            raise InputError(
                f"'{segment}' is not a key segment", file=file, field=field, value=key,
                accepted="dot-separated names with optional [index] suffixes, e.g. fleet[0].count",
            )
        path.append(match.group(1))
        path.extend(int(i) for i in _INDEX.findall(match.group(2)))
    return tuple(path)


def render_key(path: KeyPath) -> str:
    """The inverse of :func:`parse_key`, in the same form pydantic error paths use."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + part)
    return out


def set_key(data: dict[str, Any], path: KeyPath, value: Any, *, file: str | None = None,
            field: str | None = None) -> None:
    """Write `value` at `path` into `data` in place, creating missing mappings on the way.

    Lists are never grown: an index must exist in the base (``fleet[3]`` needs four groups), since a
    half-made list entry could only fail validation with a less helpful message.
    """
    node: Any = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = render_key(path[:depth]) or "(top level)"
        if isinstance(part, int):
            if not isinstance(node, list):
                raise InputError(f"'{where}' is not a list in the base scenario, so it has no [{part}]",
                                 file=file, field=field, value=render_key(path))
            if part >= len(node):
                raise InputError(
                    f"'{where}' has {len(node)} entries in the base scenario; index {part} does not exist",
                    file=file, field=field, value=render_key(path), accepted=f"an index 0 … {len(node) - 1}",
                )
        elif not isinstance(node, dict):
            raise InputError(f"'{where}' is not a mapping in the base scenario, so it has no key '{part}'",
                             file=file, field=field, value=render_key(path))
        if last:
            node[part] = copy.deepcopy(value)
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = [] if isinstance(path[depth + 1], int) else {}
            node = node[part]


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def covers(key: str, field: str) -> bool:
    """Whether a scenario error at `field` concerns the swept `key` (one is a prefix of the other)."""
    if key == field:
        return True
    longer, shorter = (field, key) if len(field) > len(key) else (key, field)
    return longer.startswith(shorter) and longer[len(shorter)] in ".["
