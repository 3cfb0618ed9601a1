"""Fixtures for all three tiers. The local stack starts once per run, on free ports, only if a test needs it."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.simulator import App, AuthEmulator
from emulators.stack import TEMPLATE_DATABASE, LocalStack, gcloud_emulators, start_on_free_ports
from shared.adapters.postgres.database import Database

NO_GCLOUD_BANNER = (
    "Google Cloud CLI emulators (Firestore, Pub/Sub) are NOT installed on this machine: "
    "{count} tests that need them were SKIPPED."
)
_skipped_for_gcloud: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if gcloud_emulators() is not None:
        return
    for item in items:
        if "needs_gcloud" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs the Google Cloud CLI's Firestore/Pub/Sub emulators"))
            _skipped_for_gcloud.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_for_gcloud:
        line = "!" * 100
        terminalreporter.write_line(line, red=True, bold=True)
        terminalreporter.write_line(NO_GCLOUD_BANNER.format(count=len(_skipped_for_gcloud)), red=True, bold=True)
        terminalreporter.write_line(line, red=True, bold=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    # HALO_TEST_KEEP=1 keeps the stack's folder (logs of every part) for a look after the run.
    state = Path(tempfile.mkdtemp(prefix="halo-test-"))
    local = _start_stack(state)
    saved = dict(os.environ)
    os.environ.update(local.env())
    from shared.config import get_settings

    get_settings.cache_clear()
    try:
        yield local
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        local.stop()
        if not os.environ.get("HALO_TEST_KEEP"):
            shutil.rmtree(state, ignore_errors=True)


def _start_stack(state: Path) -> LocalStack:
    # A short identity cache so a suspension shows within a test's patience; the mechanism stays the same.
    return start_on_free_ports(state, tick_s=1.0, identity_cache_s=0.3, progress=lambda _line: None)


_database_numbers = itertools.count()


@pytest.fixture
def db(stack: LocalStack) -> Iterator[Database]:
    """A database of its own for one test, copied from the migrated template (~40 ms)."""
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    stack.postgres.create_database(name, template=TEMPLATE_DATABASE)
    database = Database(lambda: stack.postgres.connect(name), max_idle=4)
    yield database
    database.close()
    stack.postgres.drop_database(name)


@pytest.fixture(scope="session")
def auth(stack: LocalStack) -> AuthEmulator:
    return AuthEmulator(f"http://127.0.0.1:{stack.ports.auth}")


@pytest.fixture
def anonymous_app(stack: LocalStack) -> App:
    return App(stack.functions_url, None)
