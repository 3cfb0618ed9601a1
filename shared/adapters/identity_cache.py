"""Who each recently seen uid is (shared.domain.accounts.Identity), remembered by one instance for a few seconds
(HALO_IDENTITY_CACHE_S) so that the chat path does not pay a PostgreSQL round trip per message to learn it.

Bounded: the least recently used uids go first once it is full, and an entry older than its time to live is looked
up again. A change made on this instance forgets the uid at once; other instances see it within the time to live.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from shared.domain.accounts import Identity

# Uids an instance remembers at most: far more than the people one instance serves within a time to live.
DEFAULT_SIZE = 4096


class IdentityCache:
    def __init__(
        self, ttl_s: float, *, max_size: int = DEFAULT_SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._max_size = max_size
        self._clock = clock
        self._known: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uid: str) -> Identity | None:
        """The identity remembered for `uid`, unless it is older than the time to live."""
        now = self._clock()
        with self._lock:
            found = self._known.get(uid)
            if found is None:
                return None
            expires, identity = found
            if expires <= now:
                del self._known[uid]
                return None
            self._known.move_to_end(uid)
            return identity

    def put(self, uid: str, identity: Identity) -> None:
        expires = self._clock() + self._ttl_s
        with self._lock:
            self._known[uid] = (expires, identity)
            self._known.move_to_end(uid)
            while len(self._known) > self._max_size:
                self._known.popitem(last=False)

    def forget(self, uid: str) -> None:
        """After a change to this uid's accounts made here: the next call looks it up again."""
        with self._lock:
            self._known.pop(uid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._known)
