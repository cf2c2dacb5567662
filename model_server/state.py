"""What every request handler of the model server shares (`ServerState`).

Settings, tokenizer, chat template, the scheduler once the engines are loaded, metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from model_server.chat_template import ChatTemplate
from model_server.engines.base import Engine
from model_server.guided import TokenTable
from model_server.metrics import Metrics
from model_server.scheduler import Scheduler
from model_server.settings import Settings
from model_server.tokenizer import ServerTokenizer


class ServerState:
    """Everything request handlers share; `scheduler` is set once the engines are loaded."""

    def __init__(
        self,
        settings: Settings,
        tokenizer: ServerTokenizer,
        template: ChatTemplate,
        model_name: str,
        context: int,
        engine_factory: Callable[[int], Engine],
    ):
        self.settings = settings
        self.tokenizer = tokenizer
        self.template = template
        self.model_name = model_name
        self.context = context
        self.engine_factory = engine_factory
        self.metrics = Metrics()
        self.scheduler: Scheduler | None = None
        self.created = int(time.time())
        self.tokenizer_json = tokenizer.to_json().encode()
        self._token_table: TokenTable | None = None

    @property
    def token_table(self) -> TokenTable:
        """The vocabulary by bytes, for guided choice (built on first use, ~50 ms)."""
        if self._token_table is None:
            self._token_table = TokenTable.of(self.tokenizer)
        return self._token_table

    def load_engines(self) -> None:
        """Load one engine per slot (blocking; run in a thread). Sets `scheduler` when done."""
        engines: list[Engine] = []
        try:
            for slot in range(self.settings.slots):
                engine = self.engine_factory(slot)
                engines.append(engine)
                engine.load()
        except BaseException:
            for engine in engines:
                engine.close()
            raise
        self.scheduler = Scheduler(
            engines, self.settings.queue, self.metrics, hold_s=self.settings.answer_hold_s
        )
        self.metrics.ready.set(1)
