"""Assertions shared by the report tests (a uniquely named module, see conftest.py)."""

import html
import re

import plotly.offline


def findings_text(page: str) -> list[str]:
    """The findings panel's sentences, unescaped."""
    block = re.search(r'<ul class="findings" id="findings">(.*?)</ul>', page, re.S).group(1)
    return [html.unescape(re.sub(r"<[^>]+>", "", li)).replace("\u00a0", " ")
            for li in re.findall(r"<li[^>]*>.*?</li>", block)]


def assert_self_contained(page: str, n_figures: int) -> None:
    """plotly.js inlined exactly once, no external resources, one drawing call per figure."""
    js = plotly.offline.get_plotlyjs()
    assert page.count(js[:2000]) == 1, "plotly.js must be inlined exactly once"
    assert page.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I), "no external scripts"
    assert not re.search(r"<link[^>]*https?:", page, re.I)
    assert page.count("<script") == 1 + n_figures
    assert page.count("Plotly.newPlot(") == n_figures
