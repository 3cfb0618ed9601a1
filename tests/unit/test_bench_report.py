"""bench/REPORT.md section by section: a benchmark run by name replaces its own section and nothing else."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import _report

REPORT = """# Halo Bestie benchmarks

Run 2026-12-07 12:07 UTC with Python 3.11.7, 2 cores.

## chat (215.3 s)

```
chat figures \\1 old
```

## cost (357.7 s)

```
cost figures old
```

## soak

```
soak figures
```
"""


def test_a_section_is_replaced_in_place_and_the_others_are_kept() -> None:
    new = _report.section("chat", "chat figures \\1 new", heading="chat (201.0 s)")
    text = _report.replace(REPORT, "chat", new)
    assert "chat figures \\1 old" not in text
    assert "## chat (201.0 s)\n\n```\nchat figures \\1 new\n```\n\n## cost (357.7 s)" in text
    assert _report.find(text, "cost") == "## cost (357.7 s)\n\n```\ncost figures old\n```\n"
    assert text.endswith("## soak\n\n```\nsoak figures\n```\n")
    assert text.startswith("# Halo Bestie benchmarks\n\nRun 2026-12-07")


def test_the_last_section_is_replaced_without_growing_blank_lines() -> None:
    text = _report.replace(REPORT, "soak", _report.section("soak", "soak again"))
    assert text.endswith("## cost (357.7 s)\n\n```\ncost figures old\n```\n\n## soak\n\n```\nsoak again\n```\n")
    assert _report.replace(text, "soak", _report.section("soak", "soak again")) == text


def test_a_missing_section_is_added_at_the_end_and_a_name_matches_only_itself() -> None:
    text = _report.replace(REPORT, "co", _report.section("co", "a new benchmark"))
    assert _report.find(text, "cost") == "## cost (357.7 s)\n\n```\ncost figures old\n```\n"
    assert text.endswith("## co\n\n```\na new benchmark\n```\n")
    assert _report.find(REPORT, "co") is None
    assert _report.replace("", "load", _report.section("load", "x")).startswith(_report.TITLE + "\n\n## load")


def test_a_run_by_name_rewrites_only_its_sections_marked_as_run_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "REPORT.md"
    report.write_text(REPORT)
    monkeypatch.setattr(_report, "REPORT", report)
    monkeypatch.setattr(bench_main, "_modules", lambda: ["chat", "cost"])
    runs = {"chat": "chat figures fresh", "cost": "cost figures fresh"}
    monkeypatch.setattr(
        bench_main.importlib, "import_module", lambda name: types.SimpleNamespace(run=lambda: runs[name[6:]])
    )

    assert bench_main.main(["chat"]) == 0
    text = report.read_text()
    chat = _report.find(text, "chat")
    assert chat is not None
    assert "run alone (`python -m bench chat`)" in chat and "chat figures fresh" in chat
    assert _report.find(text, "cost") == _report.find(REPORT, "cost")
    assert text.startswith(REPORT[: REPORT.index("## chat")])

    # The whole set writes the report anew, keeping the separate runs' sections, none marked as run alone.
    assert bench_main.main([]) == 0
    text = report.read_text()
    assert "run alone" not in text and "Run " in text
    assert "cost figures fresh" in text and "chat figures fresh" in text
    assert text.endswith("## soak\n\n```\nsoak figures\n```\n")


def test_an_unknown_name_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "REPORT.md"
    report.write_text(REPORT)
    monkeypatch.setattr(_report, "REPORT", report)
    assert bench_main.main(["nosuch"]) == 2
    assert report.read_text() == REPORT
