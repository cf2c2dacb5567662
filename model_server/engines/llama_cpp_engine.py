"""llama-cpp-python: the second engine (current llama.cpp; loads GGUF files as they are).

Only the context and batch management of `llama_cpp.Llama` are used: evaluation at a position,
the last position's logits, and KV-cache truncation. Sampling and prefix reuse are the shared
ones from `base.Engine`, so both engines behave the same for the same request.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model_server.engines.base import Engine, EngineConfig, EngineError


class LlamaCppEngine(Engine):
    """A GGUF model in llama.cpp through llama-cpp-python's ctypes bindings."""

    name = "llama_cpp"

    def __init__(self, config: EngineConfig):
        super().__init__(config)
        self._llm = None
        self._vocab = 0

    def load(self) -> None:
        """Load the model (mmap) and create a context of `config.context` tokens."""
        try:
            import llama_cpp
        except ImportError as exc:
            raise EngineError(
                f"llama-cpp-python is not installed (pip install 'moviemind[llama]'): {exc}"
            ) from None
        try:
            self._llm = llama_cpp.Llama(
                model_path=self.config.model_path,
                n_ctx=self.config.context,
                n_batch=self.config.batch,
                n_ubatch=self.config.batch,
                n_threads=self.config.threads,
                n_threads_batch=self.config.threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(f"llama.cpp could not load {self.config.model_path}: {exc}") from None
        self._vocab = int(self._llm.n_vocab())
        self._lib = llama_cpp

    @property
    def vocab_size(self) -> int:
        """Rows of the output projection."""
        return self._vocab

    def _eval(self, ids: Sequence[int], n_past: int) -> None:
        assert self._llm is not None, "load() first"
        self._llm.n_tokens = n_past  # Llama.eval drops KV entries from n_tokens on, then decodes
        try:
            self._llm.eval(ids)
        except RuntimeError as exc:
            raise EngineError(f"llama.cpp failed to evaluate tokens: {exc}") from None

    def _logits(self) -> np.ndarray:
        assert self._llm is not None, "load() first"
        ptr = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self._vocab,))

    def _truncate(self, n: int) -> None:
        if self._llm is not None:
            self._llm._ctx.kv_cache_seq_rm(-1, n, -1)
            self._llm.n_tokens = n

    def close(self) -> None:
        """Free the model and context."""
        if self._llm is not None:
            self._llm.close()
            self._llm = None
