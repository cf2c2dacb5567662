"""The edge's errors and protection against real servers on loopback: every bad input gets its
status and `{error: {type, message}}`; API key, CORS and rate limit. Fixtures: conftest.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.edge_api import (
    KEY,
    ORIGIN,
    assert_error,
    metrics,
    recommend,
    sample_value,
)
from tests.support.servers import Server

pytestmark = pytest.mark.slow


# -------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"liked": ["Troy"], "bogus": 1}, "bogus"),
        ({"liked": ["Troy"], "k": 0}, "k"),
        ({"liked": ["Troy"], "k": 51}, "k"),
        ({"liked": ["Troy"], "k": "five"}, "k"),
        ({"liked": ["Troy"], "k": 2.5}, "k"),
        ({"liked": "Troy"}, "liked"),
        ({"liked": [1, 2]}, "liked"),
        ({"liked": [""]}, "liked"),
        ({"liked": ["Troy"] * 51}, "liked"),
        ({"liked_ids": [-1]}, "liked_ids"),
        ({"liked": ["Troy"], "explain": "yes"}, "explain"),
        ({"liked": ["Troy"], "query": "x" * 1001}, "query"),
        ({"liked": ["Troy"], "filters": {"year_min": "nineties"}}, "year_min"),
        ({"liked": ["Troy"], "filters": {"genres_none": "Drama"}}, "genres_none"),
        ({"liked": ["Troy"], "filters": {"nope": 1}}, "nope"),
        ({"liked": ["Troy"], "filters": []}, "filters"),
    ],
)
def test_invalid_recommend_bodies_are_422_naming_the_field(
    api: httpx.Client, body: dict, field: str
) -> None:
    err = assert_error(recommend(api, **body), 422, "validation_error")
    assert field in err["message"], err


@pytest.mark.parametrize(
    "raw", [b'{"liked": [', b"{bad json}", b"\xff\xfe", b"[]", b"null", b"42", b""]
)
def test_bodies_that_are_not_a_json_object(api: httpx.Client, raw: bytes) -> None:
    r = api.post("/v1/recommend", content=raw, headers={"content-type": "application/json"})
    assert_error(r, (400, 422))


def test_malformed_json_is_400(api: httpx.Client) -> None:
    r = api.post(
        "/v1/recommend", content=b'{"liked": ["Troy"', headers={"content-type": "application/json"}
    )
    assert_error(r, 400)


def test_nothing_to_go_on_is_422(api: httpx.Client) -> None:
    assert_error(recommend(api), 422, "validation_error")
    assert_error(recommend(api, query="   "), 422, "validation_error")


def test_only_unknown_titles_is_422_unresolved_titles(api: httpx.Client) -> None:
    err = assert_error(
        recommend(api, liked=["Qqzzxv Unknown", "Zzyzx Nothing"]), 422, "unresolved_titles"
    )
    assert "Qqzzxv Unknown" in err["message"]
    assert_error(recommend(api, liked_ids=[999999999]), 422, "unresolved_titles")


def test_body_over_the_limit_is_413(api: httpx.Client) -> None:
    big = json.dumps({"liked": ["Troy"], "query": "x" * (70 * 1024)}).encode()
    r = api.post("/v1/recommend", content=big, headers={"content-type": "application/json"})
    assert_error(r, 413)


def test_filters_nothing_passes(api: httpx.Client) -> None:
    r = recommend(api, liked=["Troy"], explain=False, filters={"year_min": 2100})
    assert_error(r, (404, 422))


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/search", {}, 422),
        ("/v1/search", {"q": ""}, 422),
        ("/v1/search", {"q": "x", "k": "0"}, 422),
        ("/v1/search", {"q": "x", "k": "101"}, 422),
        ("/v1/search", {"q": "x", "k": "ten"}, 422),
        ("/v1/search", {"q": "x" * 501}, 422),
        ("/v1/movies", {}, 422),
        ("/v1/movies", {"title": "heat", "limit": "0"}, 422),
        ("/no/such/route", {}, 404),
    ],
)
def test_bad_queries(api: httpx.Client, path: str, params: dict, status: int) -> None:
    err = assert_error(api.get(path, params=params), status)
    if "k" in params:
        assert "k" in err["message"]
    if path == "/v1/search" and not params:
        assert "q" in err["message"]


def test_wrong_method_is_405(api: httpx.Client) -> None:
    assert_error(api.delete("/v1/search", params={"q": "x"}), 405)
    assert_error(api.get("/v1/recommend"), 405)


# ------------------------------------------------------------------------------- protection


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/v1/search", {"params": {"q": "heist"}}),
        ("GET", "/v1/movies", {"params": {"title": "heat"}}),
        ("GET", "/v1/movies/1", {}),
        ("POST", "/v1/recommend", {"json": {"liked": ["Heat"], "explain": False}}),
    ],
)
def test_api_key_required(model_edge: Server, method: str, path: str, kwargs: dict) -> None:
    with httpx.Client(base_url=model_edge.url, timeout=60) as c:
        assert_error(c.request(method, path, **kwargs), 401, "unauthorized")
        assert_error(c.request(method, path, headers={"X-API-Key": "wrong"}, **kwargs), 401)
        assert_error(
            c.request(method, path, headers={"Authorization": f"Bearer {KEY}x"}, **kwargs), 401
        )
        assert c.request(method, path, headers={"X-API-Key": KEY}, **kwargs).status_code == 200
        assert (
            c.request(
                method, path, headers={"Authorization": f"Bearer {KEY}"}, **kwargs
            ).status_code
            == 200
        )


def test_probes_and_schema_need_no_key(model_edge: Server) -> None:
    with httpx.Client(base_url=model_edge.url, timeout=60) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/metrics").status_code == 200
        assert c.get("/schema/openapi.json").status_code == 200


def test_cors_allows_the_configured_origins_only(model_edge: Server) -> None:
    with httpx.Client(base_url=model_edge.url, timeout=60, headers={"X-API-Key": KEY}) as c:
        r = c.get("/v1/search", params={"q": "heist"}, headers={"Origin": ORIGIN})
        assert r.status_code == 200
        assert r.headers.get("access-control-allow-origin") == ORIGIN
        r = c.get("/v1/search", params={"q": "heist"}, headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in r.headers
        # A browser's preflight carries no API key; it must still be answered.
        pre = httpx.options(
            model_edge.url + "/v1/recommend",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-api-key",
            },
        )
        assert pre.status_code in (200, 204)
        assert pre.headers.get("access-control-allow-origin") == ORIGIN
        assert "x-api-key" in pre.headers.get("access-control-allow-headers", "").lower()
    # The 401 a browser gets without a key is readable by the page (it carries the CORS header).
    r = httpx.get(model_edge.url + "/v1/search", params={"q": "x"}, headers={"Origin": ORIGIN})
    assert r.status_code == 401 and r.headers.get("access-control-allow-origin") == ORIGIN


def test_rate_limit_answers_429_with_retry_after(limited_edge: Server) -> None:
    with httpx.Client(base_url=limited_edge.url, timeout=60) as c:
        statuses = []
        limited = None
        for _ in range(15):
            r = c.get("/v1/movies", params={"title": "heat"})
            statuses.append(r.status_code)
            if r.status_code == 429:
                limited = r
                break
        assert statuses[0] == 200
        assert limited is not None, statuses
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        # Probes are never limited: an orchestrator must always see the edge.
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        fams = metrics(c)
        assert sample_value(fams, "moviemind_edge_rate_limited_total") >= 1
        assert (
            sample_value(fams, "moviemind_edge_requests_total", route="/v1/movies", status="429")
            >= 1
        )
