"""The model's own tokenizer, as the edge learns it from the model servers.

It counts prompt tokens and gives the logit_bias maps (steering) of free-text reasons.
"""

from __future__ import annotations

import asyncio
import logging

from edge.prompt import ApproxCounter, HFCounter, TokenCounter
from edge.reasons.protocol import ModelTier
from edge.steering import Steering

log = logging.getLogger("moviemind.edge.service")


class ModelTokens:
    """Fetched once in the background; an estimate (and no steering) until it has arrived."""

    def __init__(self, tier: ModelTier) -> None:
        self.tier = tier
        self._counter: TokenCounter | None = None
        self._fetch: asyncio.Task[None] | None = None
        self._steering: Steering | None = None

    async def counter(self, *, wait: bool = False) -> TokenCounter:
        """The model's own tokenizer once the upstream has served it; an estimate until then.

        A request never waits for the tokenizer (an upstream that hangs would hold every request
        behind the fetch): it starts or joins one fetch in the background and counts with the
        estimate meanwhile. `wait=True` (start-up priming) waits for that fetch.
        """
        if self._counter is None:
            if self._fetch is None or self._fetch.done():
                self._fetch = asyncio.create_task(self._load())
            if wait:
                await asyncio.shield(self._fetch)
        return self._counter or ApproxCounter()

    async def _load(self) -> None:
        try:
            raw = await self.tier.tokenizer_json()
        except Exception as exc:  # the estimate is a working fallback; say why it is in use
            log.warning("no tokenizer from the model servers: %s: %s", type(exc).__name__, exc)
            return
        if raw:
            self._counter = HFCounter(raw)

    async def steering(self) -> Steering | None:
        """logit_bias maps in the model's tokens, once its tokenizer is known; None until then
        (and for upstreams that serve no tokenizer): the gate alone judges those lines."""
        counter = await self.counter()
        if self._steering is None and isinstance(counter, HFCounter):
            self._steering = Steering(counter.tok)
        return self._steering
