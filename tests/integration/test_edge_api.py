"""The edge's HTTP API against real servers on loopback: the sample index (9,061 movies) and the
real SmolLM2 model server. Errors and protection: test_edge_errors.py; fixtures: conftest.py.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.edge_api import (
    assert_error,
    in_catalog,
    metrics,
    read_sse,
    recommend,
    sample_value,
)

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------- search and lookup


def test_search_shape_and_timings(api: httpx.Client) -> None:
    r = api.get("/v1/search", params={"q": "space adventure with robots", "k": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"results", "timings_ms"}
    results = body["results"]
    assert len(results) == 7
    for hit in results:
        assert set(hit) == {"id", "title", "year", "genres", "score"}
        assert isinstance(hit["id"], int) and hit["title"] and isinstance(hit["genres"], list)
    scores = [h["score"] for h in results]
    assert scores == sorted(scores, reverse=True)
    assert len({h["id"] for h in results}) == 7
    assert any("Sci-Fi" in h["genres"] for h in results)
    t = body["timings_ms"]
    assert t["embed"] > 0 and t["search"] > 0
    assert t["total"] >= max(t["embed"], t["search"])
    assert t["llm_first_token"] is None and t["llm_total"] is None
    in_catalog(api, [results[0]["id"]])
    assert len(api.get("/v1/search", params={"q": "heist"}).json()["results"]) == 10  # default k


def test_autocomplete_finds_the_matrix_first(api: httpx.Client) -> None:
    r = api.get("/v1/movies", params={"title": "matri", "limit": 3})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert 1 <= len(results) <= 3
    assert (results[0]["title"], results[0]["year"]) == ("The Matrix", 1999)
    assert set(results[0]) == {"id", "title", "year", "genres"}
    assert all("Matrix" in m["title"] for m in results)
    assert api.get("/v1/movies", params={"title": "qqzzxxvv"}).json()["results"] == []


def test_movie_detail_and_unknown_id(api: httpx.Client) -> None:
    matrix = api.get("/v1/movies", params={"title": "Matrix, The"}).json()["results"][0]
    r = api.get(f"/v1/movies/{matrix['id']}")
    assert r.status_code == 200
    m = r.json()
    assert (m["id"], m["title"], m["year"]) == (matrix["id"], "The Matrix", 1999)
    assert "Sci-Fi" in m["genres"]
    assert {"overview", "keywords", "director", "cast", "rating", "votes"} <= set(m)
    assert 0 < m["rating"] <= 10 and m["votes"] > 0
    err = assert_error(api.get("/v1/movies/999999999"), 404, "not_found")
    assert "999999999" in err["message"]
    assert_error(api.get("/v1/movies/not-a-number"), 404)


# ---------------------------------------------------------------------- recommend (no model)


def test_recommend_resolves_liked_titles(api: httpx.Client) -> None:
    r = recommend(
        api, liked=["Troy", "Matrix, The", "godfahter", "Qqzzxv Unknown Film"], k=6, explain=False
    )
    assert r.status_code == 200, r.text
    body = r.json()
    resolved = {x["input"]: x for x in body["resolved_liked"]}
    assert (resolved["Troy"]["title"], resolved["Troy"]["year"]) == ("Troy", 2004)
    assert (resolved["Matrix, The"]["title"], resolved["Matrix, The"]["year"]) == (
        "The Matrix",
        1999,
    )
    assert resolved["godfahter"]["title"] == "The Godfather"
    assert resolved["godfahter"]["note"]  # says it was a close match, not an exact one
    assert body["unresolved_liked"] == ["Qqzzxv Unknown Film"]
    recs = body["recommendations"]
    assert len(recs) == 6
    liked_ids = {x["id"] for x in body["resolved_liked"]}
    resolved_by_id = {x["id"]: x for x in body["resolved_liked"]}
    assert not liked_ids & {x["id"] for x in recs}
    for x in recs:
        assert {"id", "title", "year", "genres", "score", "reason"} <= set(x)
        assert x["reason"]
        # Each pick names the liked movie that led to it, one of those resolved.
        because = x["because"]
        assert because["id"] in liked_ids, x
        assert because == {
            k: v for k, v in resolved_by_id[because["id"]].items() if k in ("id", "title", "year")
        }
    in_catalog(api, [x["id"] for x in recs])

    lower = recommend(api, liked=["troy (2004)"], k=1, explain=False).json()
    assert lower["resolved_liked"][0]["id"] == resolved["Troy"]["id"]
    assert lower["unresolved_liked"] == []


def test_recommend_without_explain_never_calls_the_model(api: httpx.Client) -> None:
    before = metrics(api)
    r = recommend(api, liked=["Heat"], query="a tense heist", k=4, explain=False)
    after = metrics(api)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] is None
    assert body["explanation"] is None
    assert body["degraded"] is False
    assert body["timings_ms"]["llm_first_token"] is None and body["timings_ms"]["llm_total"] is None
    assert body["timings_ms"]["embed"] > 0  # the query was embedded
    assert len(body["recommendations"]) == 4
    # Had the model been asked, it either answered (a first-token observation) or not (degraded).
    name = "moviemind_edge_llm_first_token_seconds_count"
    assert sample_value(after, name) == sample_value(before, name)


@pytest.mark.parametrize("k", [1, 5, 50])
def test_recommend_honours_k(api: httpx.Client, k: int) -> None:
    body = recommend(api, liked=["Toy Story"], k=k, explain=False).json()
    assert len(body["recommendations"]) == k
    assert len({x["id"] for x in body["recommendations"]}) == k


def test_recommend_filters(api: httpx.Client) -> None:
    body = recommend(
        api,
        liked=["Heat", "The Godfather"],
        k=8,
        explain=False,
        filters={"year_min": 1990, "year_max": 1999, "genres_none": ["Drama"], "min_rating": 7.0},
    ).json()
    recs = body["recommendations"]
    assert len(recs) == 8
    for x in recs:
        assert 1990 <= x["year"] <= 1999
        assert "Drama" not in x["genres"]
        detail = api.get(f"/v1/movies/{x['id']}").json()
        assert detail["rating"] >= 7.0
    animated = recommend(
        api, query="a heartwarming story", k=5, explain=False, filters={"genres_any": ["animation"]}
    )
    assert animated.status_code == 200
    assert all("Animation" in x["genres"] for x in animated.json()["recommendations"])


def test_recommend_from_ids_and_from_a_query_alone(api: httpx.Client) -> None:
    matrix = api.get("/v1/movies", params={"title": "The Matrix"}).json()["results"][0]["id"]
    body = recommend(api, liked_ids=[matrix], k=3, explain=False).json()
    assert body["resolved_liked"][0]["id"] == matrix
    assert matrix not in {x["id"] for x in body["recommendations"]}
    body = recommend(api, query="funny animated movie about toys", k=3, explain=False).json()
    assert body["resolved_liked"] == [] and len(body["recommendations"]) == 3
    assert [x["because"] for x in body["recommendations"]] == [None] * 3  # nothing was liked
    assert any("Animation" in x["genres"] for x in body["recommendations"])


def test_stream_without_explain(api: httpx.Client) -> None:
    with api.stream(
        "POST", "/v1/recommend", json={"liked": ["Heat"], "k": 3, "explain": False, "stream": True}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = read_sse(r)
    assert [e for e, _ in events] == ["candidates", "recommendations", "done"]
    assert len(events[1][1]["recommendations"]) == 3
    assert events[2][1]["degraded"] is False


# ----------------------------------------------------------------- recommend with the model


def test_recommend_with_the_model(keyed: httpx.Client) -> None:
    r = recommend(keyed, liked=["Matrix, The", "Heat"], k=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["degraded"] is False, body.get("degraded_reason")
    assert body["model"] and "SmolLM2" in body["model"]
    # Only reasons that passed the gate make up the explanation, one line per such pick; each
    # is a sentence the edge began with the pick's title.
    from_model = [x for x in body["recommendations"] if x["reason_source"] == "model"]
    assert body["explanation"] == ("\n".join(x["reason"] for x in from_model) or None)
    for x in from_model:
        title = x["title"]
        assert x["reason"].startswith((f"{title} ", f"Watch {title} for its ")), x["reason"]
    t = body["timings_ms"]
    assert 0 < t["llm_first_token"] <= t["llm_total"] <= t["total"]
    recs = body["recommendations"]
    assert len(recs) == 3
    liked = {x["id"] for x in body["resolved_liked"]}
    assert len(liked) == 2 and not liked & {x["id"] for x in recs}
    assert all(x["reason"] for x in recs)
    in_catalog(keyed, [x["id"] for x in recs])


def test_stream_events_in_order_and_grounded(keyed: httpx.Client) -> None:
    body = {"liked": ["Toy Story"], "query": "something funny", "k": 3, "stream": True}
    body["debug"] = True  # raw model text as token events too
    with keyed.stream("POST", "/v1/recommend", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = read_sse(r)
    names = [e for e, _ in events]
    assert names[0] == "candidates"
    assert names[-2:] == ["recommendations", "done"]
    middle = names[1:-2]
    assert "token" in middle and set(middle) <= {"token", "reason"}, names
    shown = events[0][1]["candidates"]
    assert events[0][1]["resolved_liked"][0]["title"] == "Toy Story"
    final = events[-2][1]
    assert final["degraded"] is False and final["model"]
    recs = [x["id"] for x in final["recommendations"]]
    # The ranker's picks, as shown first; the model only writes reasons.
    assert recs == [x["id"] for x in shown] and len(recs) == 3
    assert final["raw_model_text"] == "".join(d["text"] for e, d in events if e == "token")
    for e, d in events:
        if e == "reason":
            assert final["recommendations"][d["rank"] - 1]["reason"] == d["reason"]
    assert events[-1][1]["degraded"] is False
    in_catalog(keyed, recs)


# ------------------------------------------------------------------------------- operations


def test_readyz_and_healthz(api: httpx.Client) -> None:
    r = api.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True
    assert isinstance(body["index_version"], str) and body["index_version"]
    assert body["movies"] > 9000  # the MovieLens sample catalog (9,061 movies)
    assert body["upstreams"] and body["upstreams"][0]["state"] == "closed"
    assert api.get("/healthz").json() == {"status": "ok"}


def test_openapi_lists_the_routes(api: httpx.Client) -> None:
    r = api.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert {"/v1/recommend", "/v1/search", "/v1/movies", "/v1/movies/{movie_id}"} <= set(paths)
    assert "post" in paths["/v1/recommend"] and "get" in paths["/v1/search"]
    props = spec["components"]["schemas"]["RecommendRequest"]["properties"]
    assert {"liked", "liked_ids", "query", "k", "filters", "explain", "stream"} <= set(props)


def test_metrics_has_latency_embed_and_search_histograms(api: httpx.Client) -> None:
    api.get("/v1/search", params={"q": "romantic comedy in paris"})
    recommend(api, liked=["Amelie"], query="whimsical", k=2, explain=False)
    fams = metrics(api)
    assert sample_value(fams, "moviemind_edge_request_seconds_count", route="/v1/search") >= 1
    assert sample_value(fams, "moviemind_edge_request_seconds_count", route="/v1/recommend") >= 1
    assert sample_value(fams, "moviemind_edge_embed_seconds_count") >= 2
    assert sample_value(fams, "moviemind_edge_search_seconds_count") >= 2
    assert (
        sample_value(fams, "moviemind_edge_requests_total", route="/v1/search", status="200") >= 1
    )
    # Families that count trouble exist from the start, so dashboards and alerts can rely on them.
    for family in (
        "moviemind_edge_failovers",
        "moviemind_edge_upstream_failures",
        "moviemind_edge_degraded",
        "moviemind_edge_dropped_titles",
        "moviemind_edge_rate_limited",
    ):
        assert family in fams, family


def test_the_same_movie_named_twice_is_accounted_for(api: httpx.Client) -> None:
    r = recommend(api, liked=["Troy", "troy (2004)"], explain=False)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["input"] for x in body["resolved_liked"]] == ["Troy", "troy (2004)"]
    assert body["resolved_liked"][1]["note"] == "same movie as an earlier entry"
    assert body["unresolved_liked"] == []
    assert all(rec["id"] != body["resolved_liked"][0]["id"] for rec in body["recommendations"])
