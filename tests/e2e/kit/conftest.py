"""The app teams' kit on a running stack: generated clients, /docs, CORS from a real browser.

What a machine lacks is said loudly at the end of the run, as for the Google Cloud CLI (tests/conftest.py): Java
(the Dart client's generator runs on it) and Chromium (the browser test). No Dart SDK is installed anywhere here, so
the Dart client is generated and its API classes checked, never compiled; the summary says that too.
"""

from __future__ import annotations

import shutil

import pytest

MISSING_BANNER = "{tool} is NOT installed on this machine: {what} was SKIPPED ({count} tests)."
NO_DART_SDK = "The Dart client was generated and its API classes checked, but NOT compiled: no Dart SDK here."
_skipped: dict[str, list[str]] = {}
_dart_checked: list[str] = []


def skip_loudly(tool: str, what: str, nodeid: str) -> None:
    _skipped.setdefault(f"{tool}|{what}", []).append(nodeid)
    pytest.skip(f"{tool} is not installed: {what} skipped")


def dart_checked(nodeid: str) -> None:
    _dart_checked.append(nodeid)


def chromium() -> str | None:
    return shutil.which("chromium")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        line = "!" * 100
        terminalreporter.write_line(line, red=True, bold=True)
        for key, nodeids in _skipped.items():
            tool, what = key.split("|", 1)
            terminalreporter.write_line(MISSING_BANNER.format(tool=tool, what=what, count=len(nodeids)), red=True,
                                        bold=True)  # fmt: skip
        terminalreporter.write_line(line, red=True, bold=True)
    if _dart_checked:
        terminalreporter.write_line(NO_DART_SDK, yellow=True, bold=True)
