"""Titles as people know them, through the real edge on the sample index (issue 23): alternate
titles resolve in autocomplete and in `liked`; unresolved and weak matches carry notes and the
reply says what the catalog holds; movie objects carry no empty poster or link fields."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow

# Typed form -> the display title the catalog shows for it.
ALTERNATE_FORMS = {
    "Se7en": "Se7en",
    "12 Monkeys": "Twelve Monkeys",
    "Il Postino": "Il Postino",
    "La Haine": "La Haine",
    "Amélie": "Amélie",
    "Le fabuleux destin d'Amélie Poulain": "Amélie",
    "Leon": "Léon: The Professional",
    # Accents and articles optional.
    "amelie": "Amélie",
    "haine": "La Haine",
    "postino": "Il Postino",
    "fabuleux destin d amelie poulain": "Amélie",
}


@pytest.mark.parametrize(("typed", "shown"), sorted(ALTERNATE_FORMS.items()))
def test_alternate_titles_resolve_in_autocomplete(
    api: httpx.Client, typed: str, shown: str
) -> None:
    r = api.get("/v1/movies", params={"title": typed, "limit": 5})
    assert r.status_code == 200, r.text
    titles = [m["title"] for m in r.json()["results"]]
    assert shown in titles, (typed, titles)


def test_alternate_titles_resolve_in_liked(api: httpx.Client) -> None:
    typed = sorted(ALTERNATE_FORMS)
    r = api.post("/v1/recommend", json={"liked": typed, "explain": False, "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unresolved_liked"] == [] and body["unresolved_notes"] == []
    resolved = {x["input"]: x["title"] for x in body["resolved_liked"]}
    assert resolved == ALTERNATE_FORMS
    # Nothing the API returns carries MovieLens' bracketed alternates.
    for x in [*body["resolved_liked"], *body["recommendations"]]:
        assert "(a.k.a." not in x["title"] and not x["title"].endswith(", The")


def test_unresolved_titles_name_the_catalogs_years_and_how_to_get_a_current_one(
    api: httpx.Client,
) -> None:
    newer = ["Oppenheimer", "Everything Everywhere All at Once (2022)"]
    r = api.post(
        "/v1/recommend",
        json={"liked": ["Heat", *newer, "Barbie (2023)"], "explain": False, "k": 3},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unresolved_liked"] == newer
    catalog = body["catalog"]
    assert catalog["source"] == "movielens" and catalog["description"] == "the MovieLens sample"
    assert (catalog["year_min"], catalog["year_max"]) == (1902, 2016)
    assert catalog["movies"] == 9061 and catalog["tmdb_data"] is False
    assert catalog["image_base"] == "https://image.tmdb.org/t/p/w185"
    notes = {n["input"]: n["note"] for n in body["unresolved_notes"]}
    assert list(notes) == newer
    for note in notes.values():
        assert "this catalog is the MovieLens sample, films up to 2016" in note
        assert "build a current one from TMDB: see the README" in note
    # A title the catalog has from another year: taken, but weak, and the note says why.
    barbie = body["resolved_liked"][-1]
    assert barbie["input"] == "Barbie (2023)" and barbie["weak"] is True
    assert "no 2023 release in the catalog (films up to 2016)" in barbie["note"]


def test_only_unresolved_titles_give_an_error_that_says_what_the_catalog_holds(
    api: httpx.Client,
) -> None:
    r = api.post("/v1/recommend", json={"liked": ["Oppenheimer"], "explain": False})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "'Oppenheimer'" in message and "films up to 2016" in message


def test_a_weak_match_carries_a_note(api: httpx.Client) -> None:
    r = api.post("/v1/recommend", json={"liked": ["Parasite", "Heat"], "explain": False, "k": 3})
    assert r.status_code == 200, r.text
    parasite, heat = r.json()["resolved_liked"]
    assert parasite["year"] == 1982 and parasite["weak"] is True
    assert parasite["note"] == "the only \u2018Parasite\u2019 in this catalog: 1982"
    assert heat["weak"] is False and heat["note"] is None


def test_sample_movie_objects_have_no_poster_or_link_fields(api: httpx.Client) -> None:
    """The sample has no TMDB data: the optional fields are absent, never null or empty."""
    hits = api.get("/v1/search", params={"q": "heist", "k": 5}).json()["results"]
    found = api.get("/v1/movies", params={"title": "La Haine"}).json()["results"]
    detail = api.get(f"/v1/movies/{found[0]['id']}").json()
    rec = api.post("/v1/recommend", json={"liked": ["Heat"], "explain": False, "k": 3}).json()
    for obj in [*hits, *found, detail, *rec["recommendations"]]:
        assert not {"poster_path", "tmdb_id", "imdb_id"} & set(obj), obj
    # A French film shows its original title as a subtitle.
    assert found[0]["original_title"] == "La Haine" and detail["original_title"] == "La Haine"
    assert all(r["reason_source"] and "because" in r for r in rec["recommendations"])


def test_the_openapi_document_describes_the_new_fields(api: httpx.Client) -> None:
    schemas = api.get("/schema/openapi.json").json()["components"]["schemas"]
    movie = schemas["MovieOut"]["properties"]
    assert {"poster_path", "tmdb_id", "imdb_id", "original_title"} <= set(movie)
    reply = schemas["RecommendResponse"]["properties"]
    assert {"catalog", "unresolved_notes"} <= set(reply)
    assert "weak" in schemas["ResolvedLiked"]["properties"]
