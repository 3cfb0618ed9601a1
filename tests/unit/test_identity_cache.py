"""The instance's memory of who each uid is: a time to live, and a bound that forgets the least recently used."""

from __future__ import annotations

import threading

from shared.adapters.identity_cache import IdentityCache
from shared.domain.accounts import NOBODY, Identity
from shared.domain.roles import Role

CLIENT = Identity(Role.CLIENT, "c1", suspended=False)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_identity_lives_for_its_time_to_live() -> None:
    clock = Clock()
    cache = IdentityCache(ttl_s=5, clock=clock)
    cache.put("uid-1", CLIENT)

    clock.now += 4.9
    assert cache.get("uid-1") == CLIENT
    clock.now += 0.1
    assert cache.get("uid-1") is None
    assert len(cache) == 0, "a stale entry is dropped when found"


def test_nobody_is_remembered_too_and_forget_drops_one_uid() -> None:
    cache = IdentityCache(ttl_s=5, clock=Clock())
    cache.put("uid-1", NOBODY)
    cache.put("uid-2", CLIENT)

    cache.forget("uid-1")
    cache.forget("uid-unknown")

    assert (cache.get("uid-1"), cache.get("uid-2")) == (None, CLIENT)


def test_the_memory_keeps_the_most_recently_used_uids() -> None:
    cache = IdentityCache(ttl_s=60, max_size=2, clock=Clock())
    cache.put("first", CLIENT)
    cache.put("second", CLIENT)
    assert cache.get("first") == CLIENT  # used again: now the most recent

    cache.put("third", CLIENT)  # pushes out `second`

    assert (cache.get("first"), cache.get("second"), cache.get("third")) == (CLIENT, None, CLIENT)
    assert len(cache) == 2


def test_concurrent_requests_keep_the_bound() -> None:
    cache = IdentityCache(ttl_s=60, max_size=50)

    def work(n: int) -> None:
        for i in range(200):
            cache.put(f"uid-{n}-{i}", CLIENT)
            cache.get(f"uid-{n}-{i // 2}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50
