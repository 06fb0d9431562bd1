"""Edit a device-profile YAML in place: set figures by dotted path, rewrite its ``sources:`` block.

Why not ``yaml.safe_dump`` the whole profile: the built-in profiles carry hand-written comments (what
each field means, the reasoning behind each assumption) that a dump would drop. Only the value of a
line the fit owns changes (its trailing comment becomes a short tag); the ``sources:`` mapping at the
end of the file is generated whole from the fit's figures.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

SOURCES_HEADER = ("# sources: where each figure above comes from, written by scripts/fit_jetson_profiles.py\n"
                  "# (do not edit by hand: change the script's inputs and rerun it). Tags: [S..] and [N..] as in the\n"
                  "# header, upper-case ids in device_profiles/measurements/SOURCES.md, [d] derived, [m] from memory.\n")
_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_.\-]+):(?P<rest>.*)$")
KINDS = ("fitted", "derived", "datasheet", "nvpmodel", "measured", "assumption")


def yaml_number(value: Any) -> str:
    """A number YAML 1.1 reads back as one (``6e-05`` would load as a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if "e" in text:
        text = f"{value:.12f}".rstrip("0")
    return text if "." in text else text + ".0"


def _tag(source: str) -> str:
    """The kind a source starts with (``derived: ...`` -> ``derived``), for the value line's comment."""
    kind = source.split(":", 1)[0].strip()
    if kind not in KINDS:
        raise ValueError(f"a source must start with one of {', '.join(KINDS)} and a colon: {source!r}")
    return kind


def set_values(text: str, figures: dict[str, tuple[Any, str]]) -> str:
    """`text` with every ``path: value`` line named in `figures` set to its value; each path must exist."""
    lines = text.splitlines(keepends=True)
    stack: list[tuple[int, str]] = []
    done: set[str] = set()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") or not line.strip():
            continue
        m = _LINE.match(line.rstrip("\n"))
        if not m or m.group("key").startswith("-"):
            continue
        depth = len(m.group("indent"))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        path = ".".join([k for _, k in stack] + [m.group("key")])
        stack.append((depth, m.group("key")))
        if path in figures:
            value, source = figures[path]
            head = f"{m.group('indent')}{m.group('key')}: {yaml_number(value)}"
            lines[i] = f"{head.ljust(32)}# {_tag(source)}: see sources\n"
            done.add(path)
    missing = set(figures) - done
    if missing:
        raise ValueError(f"paths not found in the profile: {sorted(missing)}")
    return "".join(lines)


def set_sources(text: str, sources: dict[str, str]) -> str:
    """`text` with its generated ``sources:`` block (from SOURCES_HEADER to the end) replaced."""
    head = text.split(SOURCES_HEADER, 1)[0].rstrip("\n") + "\n"
    block = yaml.safe_dump({"sources": sources}, sort_keys=False, width=100000, allow_unicode=True)
    return head + "\n" + SOURCES_HEADER + block


def update_profile_text(text: str, figures: dict[str, tuple[Any, str]]) -> str:
    return set_sources(set_values(text, figures), {path: source for path, (_, source) in figures.items()})
