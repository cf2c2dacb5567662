"""The edge's Prometheus text as a flat dict, and the change of its series across a phase."""

from __future__ import annotations


def parse_metrics(text: str) -> dict[str, float]:
    """Flatten the edge's Prometheus text into 'name{k=v,...}' -> value (plus per-name sums)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_created") or s.name.endswith("_bucket"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
            out[s.name + ":all"] = out.get(s.name + ":all", 0.0) + s.value
    return out


def metric_delta(
    before: dict[str, float], after: dict[str, float], prefix: str
) -> dict[str, float]:
    """Non-zero changes of every series whose key starts with `prefix` (labelled series only)."""
    keys = {k for k in (*before, *after) if k.startswith(prefix) and not k.endswith(":all")}
    return {
        k: after.get(k, 0.0) - before.get(k, 0.0)
        for k in sorted(keys)
        if after.get(k, 0.0) != before.get(k, 0.0)
    }
