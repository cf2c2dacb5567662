"""Engines behind one interface (`base.Engine`); pick one by name."""

from __future__ import annotations

from model_server.engines.base import Engine, EngineConfig, EngineError

# Architectures each engine is known to run. ctransformers' 2023 llama.cpp only knows llama-style
# GGUF files (Llama 2, Mistral, SmolLM2 after the compat rewrite); None: the engine decides.
SUPPORTED_ARCHITECTURES: dict[str, frozenset[str] | None] = {
    "ctransformers": frozenset({"llama"}),
    "llama_cpp": None,
}


def make_engine(name: str, config: EngineConfig) -> Engine:
    """A not-yet-loaded engine of kind `name`."""
    if name == "ctransformers":
        from model_server.engines.ctransformers_engine import CTransformersEngine

        return CTransformersEngine(config)
    if name == "llama_cpp":
        from model_server.engines.llama_cpp_engine import LlamaCppEngine

        return LlamaCppEngine(config)
    raise EngineError(f"unknown engine {name!r}")


__all__ = ["Engine", "EngineConfig", "EngineError", "SUPPORTED_ARCHITECTURES", "make_engine"]
