"""The model server's composition root: the Litestar application around a `ServerState`.

The routes live in openai_api.py (chat and completions, one code path) and routes.py (the
rest); generation (slots, text, SSE) in generation.py; shared state in state.py.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from model_server.errors import (
    HttpErrorReply,
    handle_error_reply,
    handle_http_exception,
    handle_unexpected,
)
from model_server.openai_api import chat_completions, completions
from model_server.routes import (
    end_answer,
    healthz,
    list_models,
    metrics,
    readyz,
    tokenize,
    tokenizer_json,
)
from model_server.state import ServerState

__all__ = ["ServerState", "create_app"]

log = logging.getLogger("model_server.app")


def create_app(state: ServerState, load_in_background: bool = True) -> Litestar:
    """The Litestar application around `state`; engines load in a thread after start-up."""

    def start_loading(app: Litestar) -> None:
        if not load_in_background:
            return

        def load() -> None:
            try:
                state.load_engines()
                log.info(
                    "ready: %s on %s with %d slot(s), %d thread(s) each, context %d",
                    state.model_name,
                    state.settings.engine,
                    state.settings.slots,
                    state.settings.threads_per_slot,
                    state.context,
                )
            except Exception as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.error("model failed to load: %s", reason)
                on_fail = getattr(app.state, "on_load_failure", None)
                if on_fail is not None:
                    on_fail(reason)

        threading.Thread(target=load, name="model-load", daemon=True).start()

    def shutdown(app: Litestar) -> None:
        if state.scheduler is not None:
            state.scheduler.close()

    return Litestar(
        route_handlers=[
            chat_completions,
            completions,
            tokenize,
            tokenizer_json,
            list_models,
            end_answer,
            healthz,
            readyz,
            metrics,
        ],
        exception_handlers={
            HttpErrorReply: handle_error_reply,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        on_startup=[start_loading],
        on_shutdown=[shutdown],
        request_max_body_size=state.settings.max_body_bytes,
        openapi_config=None,
        logging_config=None,  # keep the process's own one-line log format
        state=_app_state(state),
        debug=False,
    )


def _app_state(state: ServerState) -> Any:
    return State({"server": state, "settings": state.settings, "metrics": state.metrics})
