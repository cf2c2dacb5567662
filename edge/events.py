"""What a recommend answer emits as it is written, and why an answer was degraded.

The request path (`Recommender.answer`) yields these typed events; the HTTP layer maps each to a
server-sent event or ignores it, by type, never by a string tag.
"""

from __future__ import annotations

import enum

import msgspec

from edge.wire import ReasonEvent, RecommendResponse


class Degraded(enum.StrEnum):
    """Why an answer carries fewer model reasons than asked for (the picks stand either way).

    The value is the Prometheus label and the code before ": " in the reply's
    `degraded_reason`; clients (and the load tests) read that code.
    """

    UPSTREAM_BROKEN = "upstream_broken"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"

    @property
    def message(self) -> str:
        """One line for people, after the code."""
        return _MESSAGES[self]

    def wire(self) -> str:
        """The reply's `degraded_reason`: "code: message"."""
        return f"{self.value}: {self.message}"


_MESSAGES = {
    Degraded.UPSTREAM_BROKEN: "the model stopped mid-answer",
    Degraded.UPSTREAM_TIMEOUT: "no model answered in time",
    Degraded.UPSTREAM_UNAVAILABLE: "no model server could answer",
}


class Token(msgspec.Struct, frozen=True):
    """Raw model text (a whole answer line); passed on to clients only with `debug: true`."""

    text: str


class Reason(msgspec.Struct, frozen=True):
    """A model reason passed the gate for one pick."""

    event: ReasonEvent


class Failure(msgspec.Struct, frozen=True):
    """The model tier failed after it had started answering: an SSE `error` event."""

    type: str
    message: str


class Result(msgspec.Struct, frozen=True):
    """The final answer; always the last event."""

    response: RecommendResponse


AnswerEvent = Token | Reason | Failure | Result
"""Everything `Recommender.answer` yields, in order: (Token | Reason)*, Failure?, Result."""

WriterEvent = Token | Reason
"""What a reason writer yields; failures reach the caller as exceptions."""
