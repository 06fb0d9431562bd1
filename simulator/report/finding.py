"""One finding of a report: a sentence and how it is flagged. Its own module so that the findings
(findings.py, findings_faults.py) and the HTML that draws them (html.py) share it without importing
each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    text: str
    kind: str = "info"  # "warn" | "good" | "info": only the colour of the bullet


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    """'1 device', '1,204 devices' (or the given plural)."""
    return f"{n:,} {word if n == 1 else (plural_word or word + 's')}"
