"""What the edge's handlers share, injected into them as `edge`."""

from __future__ import annotations

from litestar.di import NamedDependency

from edge.errors import NotReady
from edge.index_store import IndexStore, Snapshot
from edge.metrics import EdgeMetrics
from edge.protection import ApiKeyGuard, RateLimiter
from edge.service import Recommender
from edge.settings import EdgeSettings


class EdgeState:
    """Settings, the index store, the recommender, metrics and the protection state."""

    def __init__(
        self,
        settings: EdgeSettings,
        store: IndexStore,
        recommender: Recommender,
        metrics: EdgeMetrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.recommender = recommender
        self.metrics = metrics
        self.api_key = ApiKeyGuard(settings.api_key)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)

    def snapshot(self) -> Snapshot:
        """The index being served; NotReady until the first one has loaded."""
        snap = self.store.current
        if snap is None:
            raise NotReady("no index loaded yet: " + (self.store.last_error or "loading"))
        return snap


# The handlers' parameter type for the injected state (`edge: Edge`).
Edge = NamedDependency[EdgeState]
