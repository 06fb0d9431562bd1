"""YAML is parsed by libyaml first and by PyYAML's Python parser only to word an error.

Why two: libyaml is 4-16x faster (BENCHMARKS.md section 3),
but its messages drop what they found (a tab, an alias's name). Both must read every document the
project ships to the same values, and refuse the same documents with the Python parser's words.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.config import loading
from simulator.config.loading import parse_yaml
from simulator.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for folder in ("scenarios", "device_profiles", "benchmarks")
                 for p in (ROOT / folder).rglob("*.yaml"))


def test_the_fast_loader_is_libyaml_where_pyyaml_has_it() -> None:
    if yaml.__with_libyaml__:  # PyYAML's wheels ship it
        assert issubclass(loading._FastLoader, yaml.CSafeLoader)
    else:  # a PyYAML built without libyaml: the Python parser, twice on a refused document
        assert issubclass(loading._FastLoader, yaml.SafeLoader)
    assert issubclass(loading._Loader, yaml.SafeLoader) and not issubclass(loading._Loader, yaml.CSafeLoader)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_both_parsers_read_every_shipped_document_alike(path: Path) -> None:
    text = path.read_text()
    assert yaml.load(text, Loader=loading._FastLoader) == yaml.load(text, Loader=loading._Loader)  # noqa: S506


def test_anchors_merges_and_types_read_alike() -> None:
    text = "base: &b {rate_mbps: 941, latency: {mean_ms: 0.3}}\nlink:\n  <<: *b\n  rate_mbps: 100\n" \
           "n: 1e3\nm: 0x10\nt: 2026-12-01\ns: yes\nz: ~\nf: .inf\n"
    fast, slow = yaml.load(text, Loader=loading._FastLoader), yaml.load(text, Loader=loading._Loader)  # noqa: S506
    assert fast == slow
    assert fast["link"] == {"rate_mbps": 100, "latency": {"mean_ms": 0.3}}


@pytest.mark.parametrize("text, words", [
    ("a:\n\t- 1\n", "found character '\\t' that cannot start any token at line 2, column 1"),
    ("a: *nope\n", "found undefined alias 'nope' at line 1, column 4"),
    ("a: [1, 2\nb: 3\n", "expected ',' or ']', but got ':' at line 2, column 2"),
    ("fleet: 1\nfleet: 2\n", "found the key 'fleet' twice (first on line 1) at line 2, column 1"),
])
def test_a_refused_document_is_worded_by_the_python_parser(text: str, words: str) -> None:
    with pytest.raises(InputError) as err:
        parse_yaml(text, "scenario.yaml")
    assert words in str(err.value) and "scenario.yaml" in str(err.value)
    with pytest.raises(yaml.YAMLError):  # libyaml refuses it too (so the first parse really failed)
        yaml.load(text, Loader=loading._FastLoader)  # noqa: S506
