"""bench/REPORT.md, section by section: `## name` up to the next `## ` heading is one benchmark's figures.

The whole set (`make bench`) writes the report anew and keeps the sections of the runs made on their own (`make soak`,
`make load`); a benchmark run by name (`python -m bench NAME ...`), soak and load replace just their own section, so a
figure run again after a fix lands in the report without editing it by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

REPORT = Path(__file__).resolve().parent / "REPORT.md"
TITLE = "# Halo Bestie benchmarks"


def _pattern(name: str) -> re.Pattern[str]:
    # The heading is `## name` or `## name (12.3 s)`; the section runs to the next heading or the end.
    return re.compile(rf"^## {re.escape(name)}(?: \([^\n]*\))?\n.*?(?=^## |\Z)", re.S | re.M)


def section(name: str, body: str, heading: str | None = None) -> str:
    """One section as the report holds it: the heading, then the figures in a code block."""
    return f"## {heading or name}\n\n```\n{body}\n```\n"


def find(text: str, name: str) -> str | None:
    """The section `name` of a report's text (heading included, trailing blank lines dropped), or None."""
    match = _pattern(name).search(text)
    return match.group(0).rstrip("\n") + "\n" if match else None


def replace(text: str, name: str, new_section: str) -> str:
    """The report's text with section `name` replaced by `new_section`, or with it added at the end."""
    new_section = new_section.rstrip("\n") + "\n"
    pattern = _pattern(name)
    if pattern.search(text):
        # A function as the replacement: the figures are taken literally (no backslash escapes).
        return pattern.sub(lambda _match: new_section + "\n", text, count=1).rstrip("\n") + "\n"
    return (text.rstrip("\n") or TITLE) + "\n\n" + new_section


def write_section(name: str, new_section: str, report: Path | None = None) -> None:
    """Replace (or add) one section of the report (bench/REPORT.md unless told), leaving the others as they were."""
    report = report or REPORT
    text = report.read_text() if report.exists() else TITLE + "\n"
    report.write_text(replace(text, name, new_section))
