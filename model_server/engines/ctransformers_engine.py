"""ctransformers 0.2.27: the default engine. Fed token ids, never text.

The high-level `LLM.generate` samples with its own C sampler and keeps its own context list;
this engine calls the library's batch-eval and logits entry points directly so sampling, prefix
reuse and cancellation are the shared ones from `base.Engine`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from model_server.engines.base import Engine, EngineConfig, EngineError


class CTransformersEngine(Engine):
    """A GGUF model in ctransformers' bundled llama.cpp (the compat copy for newer files)."""

    name = "ctransformers"

    def __init__(self, config: EngineConfig):
        super().__init__(config)
        self._llm = None
        self._vocab = 0

    def load(self) -> None:
        """Load the model file (mmap; the page cache is shared between slots)."""
        try:
            from ctransformers.llm import LLM, Config
        except ImportError as exc:
            raise EngineError(f"ctransformers is not installed: {exc}") from None
        cfg = Config(
            context_length=self.config.context,
            threads=self.config.threads,
            batch_size=self.config.batch,
            gpu_layers=0,
        )
        try:
            self._llm = LLM(self.config.model_path, config=cfg)
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(
                f"ctransformers could not load {self.config.model_path}: {exc}"
            ) from None
        self._vocab = int(self._llm.vocab_size)

    @property
    def vocab_size(self) -> int:
        """Rows of the output projection."""
        return self._vocab

    def _eval(self, ids: Sequence[int], n_past: int) -> None:
        assert self._llm is not None, "load() first"
        arr = (ctypes.c_int * len(ids))(*ids)
        ok = self._llm.ctransformers_llm_batch_eval(
            arr, len(ids), n_past, self.config.batch, self.config.threads
        )
        if not ok:
            raise EngineError("ctransformers failed to evaluate tokens")

    def _logits(self) -> np.ndarray:
        assert self._llm is not None, "load() first"
        ptr = self._llm.ctransformers_llm_logits_data()
        size = self._llm.ctransformers_llm_logits_size()
        # The library keeps only the last position's logits (vocab-sized) unless asked for all.
        return np.ctypeslib.as_array(ptr, shape=(size,))[-self._vocab :]

    def close(self) -> None:
        """Free the native model."""
        self._llm = None
