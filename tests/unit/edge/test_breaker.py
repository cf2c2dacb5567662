"""edge.upstream.breaker: the circuit breaker's states, without HTTP and without sleeping."""

from __future__ import annotations

from edge.upstream.breaker import Admission, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(failures: int = 2, cooldown_s: float = 10.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(failures, cooldown_s, clock), clock


def test_opens_after_consecutive_failures_only() -> None:
    b, _ = breaker(failures=2)
    assert not b.failed(b.admit())
    b.succeeded(b.admit())  # a success in between resets the count
    assert not b.failed(b.admit())
    assert b.failed(b.admit())
    assert b.state is BreakerState.OPEN
    assert b.admit() is Admission.REFUSED


def test_one_probe_after_the_cooldown_closes_on_success() -> None:
    b, clock = breaker(failures=1, cooldown_s=10)
    b.failed(b.admit())
    clock.now += 9.9
    assert b.admit() is Admission.REFUSED
    assert b.shown_state() is BreakerState.OPEN and round(b.retry_in(), 1) == 0.1
    clock.now += 0.1
    assert b.shown_state() is BreakerState.HALF_OPEN
    probe = b.admit()
    assert probe is Admission.PROBE
    assert b.admit() is Admission.REFUSED  # only one probe at a time
    b.succeeded(probe)
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 0
    assert b.admit() is Admission.ALLOWED


def test_a_failed_probe_starts_a_new_cooldown() -> None:
    b, clock = breaker(failures=3, cooldown_s=10)
    for _ in range(3):
        b.failed(b.admit())
    clock.now += 10
    assert b.failed(b.admit())  # the probe failed: open again at once, whatever the count
    assert b.opened_at == clock.now
    clock.now += 5
    assert b.admit() is Admission.REFUSED


def test_a_probe_without_verdict_lets_the_next_request_probe() -> None:
    b, clock = breaker(failures=1, cooldown_s=10)
    b.failed(b.admit())
    clock.now += 10
    b.no_verdict(b.admit())  # e.g. the caller went away
    assert b.state is BreakerState.OPEN
    assert b.admit() is Admission.PROBE  # no new cooldown


def test_busy_is_not_broken() -> None:
    b, clock = breaker(failures=1, cooldown_s=10)
    b.busy(b.admit())
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 0
    b.failed(b.admit())
    clock.now += 10
    b.busy(b.admit())  # a probe answered 429: alive
    assert b.state is BreakerState.CLOSED and not b.probing


def test_success_from_a_request_admitted_before_the_breaker_opened_closes_it() -> None:
    b, _ = breaker(failures=1)
    early = b.admit()
    b.failed(b.admit())
    assert b.state is BreakerState.OPEN
    b.succeeded(early)
    assert b.state is BreakerState.CLOSED
