"""Which reason writer an answer uses, from the settings and what the model servers can do."""

from __future__ import annotations

from edge.metrics import EdgeMetrics
from edge.reason_choices import focus_of
from edge.reasons.call import ModelCalls
from edge.reasons.free import FreeTextWriter
from edge.reasons.guided import GuidedChoiceWriter
from edge.reasons.protocol import Asked, ModelTier, ReasonWriter
from edge.reasons.single import SingleCallWriter
from edge.reasons.tokens import ModelTokens
from edge.settings import EdgeSettings

# GET /v1/models capabilities the strategies rely on.
PREFILL = "continue_final_message"
GUIDED_CHOICE = "guided_choice"
ANSWER_HOLD = "answer_hold"


async def writer_for(
    asked: Asked,
    tier: ModelTier,
    metrics: EdgeMetrics,
    settings: EdgeSettings,
    tokens: ModelTokens,
) -> ReasonWriter:
    """Per pick (guided choice, else free text) when every model server continues a final
    assistant message and the model does not reorder the picks; else one call for all picks."""
    if settings.llm_rerank or not await tier.continues_final_message():
        calls = ModelCalls(tier, metrics, asked)
        return SingleCallWriter(asked, calls, metrics, settings, await tokens.counter())
    calls = ModelCalls(tier, metrics, asked, hold=await tier.supports(ANSWER_HOLD))
    if settings.reason_style == "choice" and await tier.supports(GUIDED_CHOICE):
        focus = focus_of(asked.mood, asked.liked)
        return GuidedChoiceWriter(asked, calls, metrics, settings.reason_tokens, focus)
    steering = await tokens.steering()
    return FreeTextWriter(asked, calls, metrics, settings.reason_tokens, steering)
