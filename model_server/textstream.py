"""Stop sequences over streamed text: never emit text that may turn out to be part of a stop."""

from __future__ import annotations


class StopMatcher:
    """Feeds text pieces; emits what is certainly not part of a stop sequence."""

    def __init__(self, stops: list[str]):
        self._stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Text safe to emit now; sets `stopped` once a stop sequence appears (text before it
        is returned, the stop and everything after it is dropped)."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        self._pending += text
        hit = -1
        for stop in self._stops:
            i = self._pending.find(stop)
            if i >= 0 and (hit < 0 or i < hit):
                hit = i
        if hit >= 0:
            out, self._pending = self._pending[:hit], ""
            self.stopped = True
            return out
        hold = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(self._pending)), hold, -1):
                if self._pending.endswith(stop[:k]):
                    hold = k
                    break
        cut = len(self._pending) - hold
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out

    def flush(self) -> str:
        """What was held back, once generation ended without a stop."""
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out
