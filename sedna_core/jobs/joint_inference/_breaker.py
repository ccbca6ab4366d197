"""A circuit breaker for the edge's calls to the cloud, driven by an injectable clock."""

from __future__ import annotations

import threading
from typing import Literal

from sedna_core.clock import Clock, SystemClock

__all__ = ["CircuitBreaker"]

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Stop paying the cloud timeout on every call while the cloud is down.

    ``closed``: calls go through; ``failure_threshold`` consecutive failures open it.
    ``open``: calls are skipped (answered from the edge) until ``cooldown`` seconds passed.
    ``half-open``: one probe call goes through; its success closes the breaker, its failure
    opens it for another cool-down. Other calls are skipped while the probe is in flight.

    Parameters
    ----------
    failure_threshold
        Consecutive failures that open the breaker (>= 1).
    cooldown
        Seconds the breaker stays open before probing (> 0).
    clock
        Time source (tests pass a :class:`~sedna_core.clock.ManualClock`).
    """

    def __init__(
        self, failure_threshold: int = 3, cooldown: float = 30.0, *, clock: Clock | None = None
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if not cooldown > 0:
            raise ValueError("cooldown must be > 0 seconds")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        #: how many times the breaker opened (for logs and tests)
        self.trips = 0

    @property
    def state(self) -> State:
        """The state now (an open breaker whose cool-down passed reads ``half-open``)."""
        with self._lock:
            if self._state == "open" and self._cooled_down():
                return "half-open"
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def _cooled_down(self) -> bool:
        return self.clock.monotonic() - self._opened_at >= self.cooldown

    def allow(self) -> bool:
        """Whether a call may go to the cloud now; a True in half-open claims the probe."""
        with self._lock:
            if self._state == "closed":
                return True
            if self._state == "open" and self._cooled_down():
                self._state = "half-open"
            if self._state == "half-open" and not self._probing:
                self._probing = True
                return True
            return False

    def record_success(self) -> bool:
        """A call succeeded; returns True when this closed an open breaker."""
        with self._lock:
            reopened = self._state != "closed"
            self._state, self._failures, self._probing = "closed", 0, False
            return reopened

    def release_probe(self) -> None:
        """A call was abandoned (cancelled) before any verdict: let another call probe."""
        with self._lock:
            self._probing = False

    def record_failure(self) -> bool:
        """A call failed; returns True when this opened the breaker."""
        with self._lock:
            self._failures += 1
            was_probe = self._state == "half-open"
            self._probing = False
            if was_probe or (self._state == "closed" and self._failures >= self.failure_threshold):
                self._state = "open"
                self._opened_at = self.clock.monotonic()
                self.trips += 1
                return True
            return False
