"""Signed-in apps for e2e tests, made the way the real apps make them (tests/support/people.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from emulators.seed import ADMIN_EMAIL, ADMIN_PASSWORD
from emulators.simulator import App, AuthEmulator, Watch
from emulators.stack import DATABASE, LocalStack
from shared.adapters.postgres.database import Database
from tests.support import people
from tests.support.people import Pair, Stage, pair_up


@pytest.fixture
def stage(stack: LocalStack, auth: AuthEmulator, halo_db: Database) -> Stage:
    return Stage(stack.functions_url, auth, halo_db, stack.ports.xendit)


@pytest.fixture
def new_client(stage: Stage) -> Callable[..., App]:
    """A fresh Google user registered as a client, token refreshed to carry the role claim."""

    def make(display_name: str = "Sari") -> App:
        return people.new_client(stage, display_name)

    return make


@pytest.fixture
def seeded_mitra(stage: Stage) -> Callable[[int], App]:
    """One of the three seeded mitras (1..3), signed in by phone OTP and logged in."""

    def make(number: int) -> App:
        return people.seeded_mitra(stage, number)

    return make


@pytest.fixture
def halo_db(stack: LocalStack) -> Iterator[Database]:
    """The database the gateway serves, for arranging what no function offers yet and for checking the record."""
    database = Database(lambda: stack.postgres.connect(DATABASE), max_idle=2)
    yield database
    database.close()


@pytest.fixture
def quiet_world(halo_db: Database) -> None:
    """Every earlier test's mitra offline and every earlier search ended, so offers go only to this test's mitras."""
    people.quiet_world(halo_db)


@pytest.fixture
def app_config(halo_db: Database) -> Iterator[Callable[..., None]]:
    """Change settings for one test (as the control center would); restored afterwards."""
    changed = people.Settings(halo_db)
    yield changed.change
    changed.restore()


@pytest.fixture
def new_mitra(stage: Stage) -> Callable[..., App]:
    """A mitra registered for this test (as an admin would), signed in by phone OTP, logged in, and online."""

    def make(name: str = "Mitra Uji", online: bool = True) -> App:
        return people.new_mitra(stage, name, online=online)

    return make


@pytest.fixture
def paired(new_client: Callable[..., App], new_mitra: Callable[..., App], quiet_world: None) -> Callable[..., Pair]:
    """A client and a mitra in an active session, reached through the real pairing flow."""

    def make(client_name: str = "Sari", mitra_name: str = "Mitra Uji") -> Pair:
        return pair_up(new_client(client_name), new_mitra(mitra_name), {"free_trial": True})

    return make


@pytest.fixture
def watches() -> Iterator[Callable[[Watch], Watch]]:
    """Firestore listeners opened by a test, closed after it."""
    opened: list[Watch] = []

    def keep(watch: Watch) -> Watch:
        opened.append(watch)
        return watch

    yield keep
    for watch in opened:
        watch.close()


@pytest.fixture
def short_tier(halo_db: Database) -> Iterator[Callable[[int], str]]:
    """A paid tier lasting seconds (as an admin could configure), so a test can watch a session run out."""
    created: list[str] = []

    def make(duration_s: int, price: int = 5000) -> str:
        created.append(people.add_tier(halo_db, duration_s, price))
        return created[-1]

    yield make
    people.retire_tiers(halo_db, created)


@pytest.fixture
def timed_session(
    stage: Stage,
    new_client: Callable[..., App],
    new_mitra: Callable[..., App],
    short_tier: Callable[[int], str],
    quiet_world: None,
) -> Callable[[int], Pair]:
    """A paid session of `duration_s` seconds, bought, paid and paired through the real flow."""

    def make(duration_s: int) -> Pair:
        tier_id = short_tier(duration_s)
        mitra = new_mitra()
        client = new_client()
        people.pay_checkout(client, stage.db, stage.xendit_port, {"tier_id": tier_id, "purpose": "session"}, timeout=10)
        return pair_up(client, mitra, {"tier_id": tier_id})

    return make


@pytest.fixture
def admin(stack: LocalStack, auth: AuthEmulator) -> App:
    """The seeded control-center admin, signed in with email and password."""
    return App(stack.functions_url, auth.sign_in_with_email(ADMIN_EMAIL, ADMIN_PASSWORD))
