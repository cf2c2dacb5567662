"""Start-up: resolve and check the model, build tokenizer and template, then serve with uvicorn.

A local model file (a path or the embedded SmolLM2) is checked before the server binds its
port, so a wrong path or a bad file is one line and exit code 2 with nothing listening. A model
from a URL can take many minutes to arrive, so the port opens first (model_server/startup_gate.py:
/healthz 200, /readyz 503 with the download's progress) and the download, the checks and the
ctransformers rewrite run in a thread; a failure there is the same one line and exit code 2.
Engines load after the port is open, so /readyz turns 200 when the model is loaded.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar

from model_server.app import ServerState, create_app
from model_server.chat_template import ChatTemplate, ChatTemplateError, select_template
from model_server.compat import ensure_compatible
from model_server.download_progress import Cancelled, Progress, ProgressCollector
from model_server.engines import SUPPORTED_ARCHITECTURES, EngineConfig, make_engine
from model_server.engines.base import Engine, EngineError
from model_server.gguf_file import GgufError, GgufMetadata, check_gguf_header, read_info
from model_server.model_source import (
    ModelSourceError,
    cached_sha256,
    needs_download,
    resolve_model,
)
from model_server.settings import Settings, SettingsError
from model_server.startup_gate import StartupGate
from model_server.tokenizer import ServerTokenizer
from model_server.weights import ensure_f16, f16_key

log = logging.getLogger("model_server")


class PreparedModel(msgspec.Struct, kw_only=True, frozen=True):
    """The checked model and what the server builds from it before it starts."""

    info: GgufMetadata
    engine_path: str
    model_name: str
    context: int


def configure_logging(level: str) -> None:
    """One line per event on stderr."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def default_model_name(path: Path) -> str:
    """Model id from the file name: `SmolLM2-135M-Instruct.Q4_1.gguf` -> `SmolLM2-135M-Instruct.Q4_1`."""
    return path.name[: -len(".gguf")] if path.name.lower().endswith(".gguf") else path.name


# Problems a person can fix from the message alone: reported as one line, no traceback.
EXPECTED_ERRORS = (SettingsError, GgufError, ModelSourceError, ChatTemplateError, EngineError)


def prepare(settings: Settings, progress: Progress | None = None) -> PreparedModel:
    """Find, fetch, verify and inspect the model; rewrite it for ctransformers if needed."""
    progress = progress or Progress()
    path, known_sha = resolve_model(settings, progress)
    progress.set("preparing model: reading its metadata")
    check_gguf_header(path)
    cache = Path(settings.cache_dir)
    sha = known_sha or cached_sha256(path, cache)
    info = read_info(path, cache, sha)
    supported = SUPPORTED_ARCHITECTURES.get(settings.engine)
    if supported is not None and info.architecture not in supported:
        raise GgufError(
            f"architecture {info.architecture!r} of {path} is not supported by the "
            f"{settings.engine} engine (supported: {', '.join(sorted(supported))})"
        )
    context = settings.context
    if info.context_length and context > info.context_length:
        log.warning(
            "context %d exceeds the model's trained %d; using %d",
            context,
            info.context_length,
            info.context_length,
        )
        context = info.context_length
    engine_path = path
    engine_info = info
    if settings.weights == "f16":
        progress.set("preparing model: writing an f16 copy")
        engine_path = ensure_f16(info, cache)
        # Same metadata and vocabulary; only the file (and so its cache key) differs.
        engine_info = msgspec.structs.replace(
            info, path=str(engine_path), sha256=f16_key(info.sha256)
        )
    if settings.engine == "ctransformers":
        progress.set("preparing model: checking it loads in ctransformers")
        engine_path = ensure_compatible(engine_info, cache)
    name = settings.name or default_model_name(path if not settings.url else Path(settings.url))
    return PreparedModel(info=info, engine_path=str(engine_path), model_name=name, context=context)


def build_state(settings: Settings, prepared: PreparedModel) -> ServerState:
    """Tokenizer, chat template and an engine factory around a prepared model."""
    tokenizer = ServerTokenizer(prepared.info)
    template: ChatTemplate = select_template(
        prepared.info, settings.chat_template, tokenizer.tokens
    )
    log.info(
        "model %s (%s, %s vocabulary of %d tokens, %s chat template), engine %s on %s",
        prepared.model_name,
        prepared.info.architecture,
        prepared.info.vocab_model,
        tokenizer.vocab_size,
        template.name,
        settings.engine,
        prepared.engine_path,
    )

    def factory(slot: int) -> Engine:
        return make_engine(
            settings.engine,
            EngineConfig(
                model_path=prepared.engine_path,
                context=prepared.context,
                threads=settings.threads_per_slot,
            ),
        )

    return ServerState(
        settings=settings,
        tokenizer=tokenizer,
        template=template,
        model_name=prepared.model_name,
        context=prepared.context,
        engine_factory=factory,
    )


def serve(settings: Settings) -> int:
    """Run until interrupted; 2 when the model failed to arrive or to load in the background."""
    import uvicorn

    failed: list[str] = []
    server: uvicorn.Server | None = None

    def on_load_failure(message: str) -> None:
        failed.append(message)
        if server is not None:
            server.should_exit = True

    def application(state: ServerState) -> Litestar:
        app = create_app(state)
        app.state.on_load_failure = on_load_failure
        return app

    asgi: Any
    if needs_download(settings):
        progress = Progress()
        gate = StartupGate(
            progress, lambda: _prepare_in_background(settings, gate, application, on_load_failure)
        )
        asgi = gate
    else:
        asgi = application(build_state(settings, prepare(settings)))
    config = uvicorn.Config(
        asgi,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.run()
    if failed:
        print(f"model_server: error: {failed[0]}", file=sys.stderr)
        return 2
    return 0


def _prepare_in_background(
    settings: Settings,
    gate: StartupGate,
    application: Callable[[ServerState], Litestar],
    on_failure: Callable[[str], None],
) -> None:
    """Start the thread that fetches and prepares the model, then hands the app to the gate."""

    def run() -> None:
        progress = gate.progress
        try:
            state = build_state(settings, prepare(settings, progress))
            # The download's gauges stay on /metrics after the hand-over (at 0 then).
            state.metrics.registry.register(ProgressCollector(progress))
            progress.set("loading model")
            gate.hand_over(application(state))
        except Cancelled:
            log.info("shutting down during the model's preparation")
        except EXPECTED_ERRORS as exc:
            message = " ".join(str(exc).split())
            log.error("model preparation failed: %s", message)
            on_failure(message)
        except Exception as exc:  # a bug: the traceback goes to the log, one line to stderr
            log.exception("model preparation failed")
            on_failure(f"model preparation failed: {type(exc).__name__}: {exc}")

    threading.Thread(target=run, name="model-prepare", daemon=True).start()
