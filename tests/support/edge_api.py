"""Constants and helpers of the edge API tests (tests/integration/test_edge_*.py)."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

KEY = "test-key-3f9a"
ORIGIN = "http://moviemind.test"
PATIENT = {
    "MOVIEMIND_EDGE_FIRST_TOKEN_TIMEOUT_S": "120",
    "MOVIEMIND_EDGE_TOTAL_TIMEOUT_S": "240",
    # A small prompt keeps the model's prefill short on a busy machine; k is small here too.
    "MOVIEMIND_EDGE_PROMPT_TOKENS": "192",
}


def assert_error(
    r: httpx.Response, status: int | tuple[int, ...], type_: str | None = None
) -> dict:
    """The error contract: the status, {"error": {"type", "message"}}, and no internals."""
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "message"}, body
    assert isinstance(body["error"]["type"], str) and body["error"]["type"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    for leak in ("Traceback", "/work/", "site-packages", '.py"', 'File "'):
        assert leak not in r.text, r.text
    if type_ is not None:
        assert body["error"]["type"] == type_, body
    return body["error"]


def metrics(client: httpx.Client) -> dict[str, list]:
    """Prometheus families by name -> samples."""
    r = client.get("/metrics")
    assert r.status_code == 200
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


def sample_value(families: dict[str, list], sample: str, **labels: str) -> float:
    for family in families.values():
        for s in family:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def read_sse(r: httpx.Response) -> list[tuple[str, dict]]:
    """(event, data) pairs of a text/event-stream response, in order."""
    events: list[tuple[str, dict]] = []
    event, data = "message", []
    for line in r.iter_lines():
        if line == "":
            if data:
                events.append((event, json.loads("\n".join(data))))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        events.append((event, json.loads("\n".join(data))))
    return events


def in_catalog(client: httpx.Client, ids: list[int]) -> None:
    for movie_id in ids:
        r = client.get(f"/v1/movies/{movie_id}")
        assert r.status_code == 200, (movie_id, r.text)
        assert r.json()["id"] == movie_id


def recommend(client: httpx.Client, **body) -> httpx.Response:
    return client.post("/v1/recommend", json=body)
