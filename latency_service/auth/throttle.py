"""Throttling repeated failed authentication per client address (token guessing)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from latency_service.errors import TooManyAttempts


class FailedAuthThrottle:
    """At most ``limit`` failed authentications per address in any ``window_s`` seconds; past
    that the address is refused (even with a good token) until its oldest failure ages out.

    In memory, per worker process: with N workers an address can fail up to N x limit times per
    window, still far too few to guess a 256-bit token.
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window_s = window_s
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Raise :class:`TooManyAttempts` if ``address`` used up its failures."""
        failures = self._failures.get(address)
        if not failures or len(failures) < self._limit:
            return
        with self._lock:
            now = self._clock()
            while failures and failures[0] <= now - self._window_s:
                failures.popleft()
            if len(failures) < self._limit:
                return
            wait_s = failures[0] + self._window_s - now
        raise TooManyAttempts(
            f"{self._limit} failed authentications from {address} within "
            f"{self._window_s:g} s; wait {math.ceil(wait_s)} s, then use a valid token",
            retry_after_s=wait_s,
        )

    def failed(self, address: str) -> None:
        with self._lock:
            now = self._clock()
            failures = self._failures.get(address)
            if failures is None:
                if len(self._failures) >= self._max_addresses:
                    self._forget_idle(now)
                failures = self._failures[address] = deque(maxlen=self._limit)
            failures.append(now)

    def _forget_idle(self, now: float) -> None:
        idle = [a for a, f in self._failures.items() if not f or f[-1] <= now - self._window_s]
        for address in idle:
            del self._failures[address]
        if len(self._failures) >= self._max_addresses:
            # Every address failed recently: a flood from many addresses. Start over rather
            # than grow without bound.
            self._failures.clear()
