"""Catalog sources. Each yields `moviemind_core.catalog.Movie` records and counts what it skipped."""

from __future__ import annotations

import msgspec


class SourceStats(msgspec.Struct, kw_only=True):
    """What a source read: movies yielded, rows skipped and why (reason -> count)."""

    yielded: int = 0
    skipped: int = 0
    reasons: dict[str, int] = {}

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def summary(self) -> str:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items()))
        return f"{self.yielded} movies, {self.skipped} skipped" + (f" ({why})" if why else "")
