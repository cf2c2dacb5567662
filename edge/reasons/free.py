"""Free-text reasons: the model finishes each pick's sentence from an opening the edge wrote.

Steered away from known failures (logit_bias) and stopped at the sentence's end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edge.metrics import EdgeMetrics
from edge.prompt import REASON_STOPS, reason_openings
from edge.reasons.call import ModelCalls
from edge.reasons.draft import Draft
from edge.reasons.per_pick import CONTINUE, Attempt, PerPickWriter
from edge.reasons.protocol import Asked
from edge.steering import Steering
from moviemind_core.ranking import Scored


class FreeTextWriter(PerPickWriter):
    """The openings in turn, while the pick's token budget lasts."""

    def __init__(
        self,
        asked: Asked,
        calls: ModelCalls,
        metrics: EdgeMetrics,
        reason_tokens: int,
        steering: Steering | None,
    ) -> None:
        super().__init__(asked, calls, metrics, reason_tokens)
        self.steering = steering  # None until the model's tokenizer is known

    def attempts(self, draft: Draft, pick: Scored, rejected: list[str]) -> Iterator[Attempt]:
        """One attempt per opening of `reason_openings`."""
        extra: dict[str, Any] = dict(CONTINUE)
        if self.steering is not None:
            extra["logit_bias"] = self.steering.bias_for(pick.movie)
        openings = reason_openings(pick.movie)
        for n, opening in enumerate(openings, 1):
            yield Attempt(opening, REASON_STOPS, extra, last=n == len(openings))
