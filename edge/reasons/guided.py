"""Guided-choice reasons: the model ends each pick's sentence with one the catalog backs.

The sentences come from edge/reason_choices.py; the model server chooses among them by the
model's own likelihoods.
"""

from __future__ import annotations

from collections.abc import Iterator

from edge.metrics import EdgeMetrics
from edge.prompt import choice_opening
from edge.reason_choices import Focus, reason_choices, varied
from edge.reason_gate import repeats
from edge.reasons.call import ModelCalls
from edge.reasons.draft import Draft
from edge.reasons.per_pick import CONTINUE, Attempt, PerPickWriter
from edge.reasons.protocol import Asked
from moviemind_core.ranking import Scored

# The reasons metric's label for a pick whose catalog entry is too thin for any sentence: the
# model is not asked and the catalog's reason stays.
NO_CHOICES = "no_choices"


class GuidedChoiceWriter(PerPickWriter):
    """One of the catalog-backed sentences per pick; once more (without the rejected one and
    those too like reasons already shown) when the gate says no."""

    never_asked = NO_CHOICES
    plot = False

    def __init__(
        self,
        asked: Asked,
        calls: ModelCalls,
        metrics: EdgeMetrics,
        reason_tokens: int,
        focus: Focus,
    ) -> None:
        super().__init__(asked, calls, metrics, reason_tokens)
        self.focus = focus  # what the request asks for

    def attempts(self, draft: Draft, pick: Scored, rejected: list[str]) -> Iterator[Attempt]:
        """Choose among the sentences; then among the rest once, if any differ enough."""
        opening = choice_opening(pick.movie)
        people = self.asked.snapshot.people
        choices = varied(
            reason_choices(pick.movie, people, self.focus), list(draft.reasons.values())
        )
        if not choices:
            return  # too little in the catalog for a sentence: its own reason stays
        # No stop strings: a choice may hold a period ("William H. Macy") and ends itself.
        # No repetition penalty: every choice repeats words the prompt holds.
        base = {**CONTINUE, "repetition_penalty": 1.0}
        yield Attempt(opening, None, {**base, "guided_choice": choices}, last=len(choices) < 2)
        earlier = list(draft.reasons.values())
        rest = [
            c for c in choices if opening + c not in rejected and not repeats(opening + c, earlier)
        ]
        if rest:
            yield Attempt(opening, None, {**base, "guided_choice": rest}, last=True)
