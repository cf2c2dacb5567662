"""A circuit breaker for one upstream: closed -> open after N failures -> one half-open probe.

Pure state, no I/O: the pool asks `admit()` before contacting an upstream and reports the
verdict of every attempt. The clock is injected so tests step over cooldowns without sleeping.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Admission(enum.Enum):
    """The answer to "may a request go to this upstream now?"."""

    REFUSED = "refused"
    ALLOWED = "allowed"
    PROBE = "probe"  # allowed as the single half-open probe: its verdict decides


class CircuitBreaker:
    """After `failures` consecutive failures the upstream is skipped for `cooldown_s`; then one
    request is let through as a probe. A probe that succeeds closes the breaker, one that fails
    opens it for another cooldown, one that ends without a verdict lets the next request probe."""

    def __init__(
        self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.probing = False

    def admit(self) -> Admission:
        """May a request go to the upstream now? An open breaker admits one probe per cooldown."""
        if self.state is BreakerState.CLOSED:
            return Admission.ALLOWED
        if self.probing:
            return Admission.REFUSED  # a half-open probe is in flight; its verdict decides
        if self.clock() - self.opened_at >= self.cooldown_s:
            self.state = BreakerState.HALF_OPEN
            self.probing = True
            return Admission.PROBE
        return Admission.REFUSED

    def retry_in(self) -> float:
        """Seconds until an open breaker admits a probe (0 when it would now)."""
        return max(0.0, self.cooldown_s - (self.clock() - self.opened_at))

    def succeeded(self, admission: Admission) -> None:
        # Any success proves the upstream works, even from a request admitted before the
        # breaker opened; only the probe's own slot is released here.
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        if admission is Admission.PROBE:
            self.probing = False

    def busy(self, admission: Admission) -> None:
        """The upstream answered "busy" (429): alive, so a probe closes the breaker; a full
        queue must not take a healthy server out of rotation for a whole cooldown."""
        if admission is Admission.PROBE:
            self.succeeded(admission)

    def failed(self, admission: Admission) -> bool:
        """Count a failure; True when this one opened the breaker."""
        self.consecutive_failures += 1
        probe = admission is Admission.PROBE
        if probe:
            self.probing = False
        if probe or (
            self.state is BreakerState.CLOSED and self.consecutive_failures >= self.failures
        ):
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()
            return True
        return False

    def no_verdict(self, admission: Admission) -> None:
        """The attempt ended without telling anything (the caller went away, or a 4xx)."""
        if admission is Admission.PROBE:
            # Back to open with the old opened_at, so the next request probes straight away.
            self.probing = False
            if self.state is BreakerState.HALF_OPEN:
                self.state = BreakerState.OPEN

    def shown_state(self) -> BreakerState:
        """The state to report: an open breaker past its cooldown admits a probe (half-open)."""
        if self.state is BreakerState.OPEN and not self.probing and self.retry_in() == 0.0:
            return BreakerState.HALF_OPEN
        return self.state
