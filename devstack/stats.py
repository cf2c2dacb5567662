"""Percentiles of latencies, the one way every benchmark and load test computes them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import numpy as np


@overload
def percentile(values: Sequence[float], q: float) -> float | None: ...
@overload
def percentile(values: Sequence[float], q: float, empty: float) -> float: ...
def percentile(values: Sequence[float], q: float, empty: float | None = None) -> float | None:
    """The q-th percentile (0..100, linear interpolation as numpy's default); `empty` for none."""
    if len(values) == 0:
        return empty
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def latency_summary(ms: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p90, p95, p99, max and mean of latencies in ms (None where there are none)."""
    return {
        "n": len(ms),
        **{f"p{q}": percentile(ms, q) for q in (50, 90, 95, 99)},
        "max": max(ms) if len(ms) else None,
        "mean": math.fsum(ms) / len(ms) if len(ms) else None,
    }
