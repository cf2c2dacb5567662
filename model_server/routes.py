"""The model server's routes besides generation: tokenizer, models, answer holds, health, metrics."""

from __future__ import annotations

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath

from model_server.api_types import ModelCapabilities, ModelCard, ModelList, TokenizeRequest
from model_server.generation import ready_scheduler
from model_server.http_common import auth_guard, decode, server_state


@post("/tokenize", guards=[auth_guard], status_code=200)
async def tokenize(request: Request) -> dict[str, list[int]]:
    """Token ids of `content` in the model's own vocabulary (special tokens split out)."""
    state = server_state(request)
    req: TokenizeRequest = await decode(request, TokenizeRequest)
    return {"tokens": state.tokenizer.encode(req.content, add_bos=req.add_special)}


@get("/v1/tokenizer", guards=[auth_guard])
async def tokenizer_json(request: Request) -> Response[bytes]:
    """The model's tokenizer as a Hugging Face tokenizer.json (load with Tokenizer.from_str)."""
    return Response(server_state(request).tokenizer_json, media_type="application/json")


@get("/v1/models", guards=[auth_guard])
async def list_models(request: Request) -> ModelList:
    """The one model this server runs, with what it offers beyond the OpenAI API."""
    state = server_state(request)
    capabilities = ModelCapabilities(answer_hold=state.settings.answer_hold_s > 0)
    return ModelList(
        data=[
            ModelCard(
                id=state.model_name,
                created=state.created,
                context_length=state.context,
                engine=state.settings.engine,
                capabilities=capabilities,
            )
        ]
    )


@delete("/v1/answers/{answer:str}", guards=[auth_guard], status_code=200)
async def end_answer(request: Request, answer: FromPath[str]) -> dict[str, bool]:
    """The answer `answer` is done: the slot kept for its next request is free now."""
    return {"released": ready_scheduler(server_state(request)).release_hold(answer)}


@get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process serves HTTP."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request) -> dict[str, str]:
    """Readiness: 200 once the model is loaded, 503 before."""
    state = server_state(request)
    ready_scheduler(state)
    return {"status": "ready", "model": state.model_name}


@get("/metrics")
async def metrics(request: Request) -> Response[bytes]:
    """Prometheus text exposition."""
    m = server_state(request).metrics
    return Response(m.render(), media_type=m.content_type)
