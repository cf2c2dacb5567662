"""moviemind_core.lexicon: word knowledge read from versioned data files through one normaliser,
genre names made canonical when the index is built, and no word table left in Python code."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from index_builder.sources.tmdb_export import TMDB_GENRES
from moviemind_core.bundle import Bundle
from moviemind_core.catalog import Movie
from moviemind_core.lexicon import (
    DEFAULT_VERSION,
    canonical_genre,
    canonical_genres,
    lexicon,
    load,
    versions,
)
from moviemind_core.lexicon.loader import DATA

ROOT = Path(__file__).resolve().parents[3]
# Every genre MovieLens has used, as its movies.csv files spell them (ml-latest, and ml-100k's
# older "Children's"); its placeholder "(no genres listed)" is tested below.
MOVIELENS_GENRES = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def test_every_version_loads_and_names_itself() -> None:
    assert DEFAULT_VERSION in versions()
    for v in versions():
        lex = load(v)
        assert lex.version == v
        assert lex.genres and lex.claim_backing and lex.gate.film_talk


@pytest.mark.parametrize("name", [*MOVIELENS_GENRES, *TMDB_GENRES.values()])
def test_every_movielens_and_tmdb_genre_has_a_canonical_id(name: str) -> None:
    gid = canonical_genre(name)
    assert lexicon().genre(name) is not None, f"{name!r} is missing from genres.toml"
    assert lexicon().genre(gid).id == gid  # type: ignore[union-attr]
    assert canonical_genre(gid) == gid  # ids are fixed points


def test_one_genre_one_id_whatever_the_spelling() -> None:
    assert canonical_genre("Science Fiction") == canonical_genre("sci-fi") == "Sci-Fi"
    assert canonical_genre("Family") == canonical_genre("Children's") == "Children"
    assert canonical_genre("film noir") == "Film-Noir"
    assert canonical_genre("  Space Opera ") == "Space Opera"  # unknown: kept, trimmed
    assert canonical_genres(["Family", "Children", "(no genres listed)", "Drama", ""]) == (
        "Children",
        "Drama",
    )


def test_mood_phrases_claims_and_terms() -> None:
    lex = lexicon()
    assert lex.genres_named("Cartoons") == ("Animation",)
    assert lex.genres_named("musicals") == ("Musical", "Music")
    assert lex.genres_named("adventure") == ()  # "no adventure" stays a phrase, as before
    assert {"comedy"} <= lex.claim_backing["hilarious"]
    assert {"heist", "crime"} <= lex.claim_backing["crime"]
    assert lex.claim_backing["superhero"] == {"superhero"}
    assert lex.genre_terms(["Film-Noir", "Family"]) == {"noir", "children", "family"}
    assert lex.genre_terms(["Space Opera"]) == {"space", "opera"}
    assert lex.spoken_genres(["Action", "IMAX", "TV Movie", "Space Opera"]) == [
        "Action",
        "Space Opera",
    ]
    # Specificity is file order: a western comedy is first a western.
    assert lex.specificity["Western"] < lex.specificity["Comedy"]


def test_the_normaliser() -> None:
    norm = lexicon().normaliser
    assert norm.words("Ramón's sci-fi, 1999!") == ["Ramón's", "sci-fi"]
    assert norm.terms("Slow-burn Sci-Fi 2") == ["slow", "burn", "sci", "fi", "2"]
    assert norm.forms("zombies") == {"zombies", "zombie", "zombi"}
    assert norm.forms("suspenseful") == {"suspenseful", "suspense"}
    assert norm.forms("gas") == {"gas"}  # "ga" would keep fewer than three letters
    assert norm.stems("A captivating, captivated cast") == {"capti", "cast"}
    vocab = frozenset({"forget", "study", "stop"})
    for word in ("unforgettably", "studied", "stopped", "forgets"):
        assert norm.is_word(word, vocab), word
    assert not norm.is_word("rompione", vocab)


def _copy_version(tmp_path: Path) -> Path:
    shutil.copytree(DATA / DEFAULT_VERSION, tmp_path / DEFAULT_VERSION)
    return tmp_path / DEFAULT_VERSION


def test_a_malformed_file_fails_at_load_naming_it(tmp_path: Path) -> None:
    folder = _copy_version(tmp_path)
    text = (folder / "mood.toml").read_text()
    (folder / "mood.toml").write_text(text.replace("vague = [", "vauge = ["))
    with pytest.raises(ValueError, match=r"mood\.toml"):
        load(DEFAULT_VERSION, tmp_path)
    folder = _copy_version(tmp_path / "b")
    text = (folder / "morphology.toml").read_text()
    (folder / "morphology.toml").write_text(text.replace("stem_length = 5", 'stem_length = "5"'))
    with pytest.raises(ValueError, match=r"morphology\.toml"):
        load(DEFAULT_VERSION, tmp_path / "b")


def test_a_spelling_that_names_two_genres_is_refused(tmp_path: Path) -> None:
    folder = _copy_version(tmp_path)
    text = (folder / "genres.toml").read_text()
    (folder / "genres.toml").write_text(
        text.replace('aliases = ["Historical"]', 'aliases = ["War"]')
    )
    with pytest.raises(ValueError, match="War"):
        load(DEFAULT_VERSION, tmp_path)


def test_the_index_stores_canonical_genres(tmp_path: Path) -> None:
    from tests.unit.core.test_bundle import small_bundle

    movies = [
        Movie(id=1, title="Arrival", year=2016, genres=("Science Fiction", "Drama")),
        Movie(id=2, title="Paddington", year=2014, genres=("Family", "Comedy", "Children")),
        Movie(id=3, title="Untitled", year=2001, genres=("(no genres listed)",)),
    ]
    small_bundle(tmp_path / "idx", movies)
    stored = {m.id: m.genres for m in Bundle.load(tmp_path / "idx").movies}
    assert stored == {1: ("Sci-Fi", "Drama"), 2: ("Children", "Comedy"), 3: ()}


def test_the_sample_index_holds_canonical_genre_ids_only(sample_index: Path) -> None:
    genres = {g for m in Bundle.load(sample_index, verify=False).movies for g in m.genres}
    assert genres and {g for g in genres if canonical_genre(g) != g} == set()


# Module-level collections with more string literals than this are word tables...
HANDFUL = 5
# ... unless they are one of these, which hold names of code, not words (file, variable).
NOT_WORDS = {
    ("edge/http/openapi.py", "_NEEDS_LIKED_OR_QUERY"),  # JSON schema
    ("edge/http/openapi.py", "_SSE_EVENT"),  # JSON schema
    ("edge/http/openapi.py", "_ERROR_MEANINGS"),  # HTTP status descriptions
    ("edge/http/errors.py", "_HTTP_TYPES"),  # error type codes of the API
    ("edge/settings.py", "UPSTREAM_NAMES"),  # environment variable names
}


def word_tables(source: str) -> list[tuple[str, int]]:
    """(name, literal count) of each module-level collection in `source` holding more than a
    handful of string literals (`__all__` aside)."""
    found = []
    for node in ast.parse(source).body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        name = next((t.id for t in targets if isinstance(t, ast.Name)), "?")
        literals = {
            id(c)
            for sub in ast.walk(node.value)
            if isinstance(sub, (ast.List, ast.Tuple, ast.Set, ast.Dict))
            for c in ast.walk(sub)
            if isinstance(c, ast.Constant) and isinstance(c.value, str)
        }
        if len(literals) > HANDFUL and name != "__all__":
            found.append((name, len(literals)))
    return found


def test_the_scan_finds_a_word_table() -> None:
    source = 'X = 1\nTONE = {"dark": "dark", "tense": "tense", "epic": "epic"}\n'
    source += '__all__ = ["a", "b", "c", "d", "e", "f"]\nSMALL = ("a", "b")\n'
    source += 'WORDS = frozenset(["gore", "gory", "bloody", "blood", "grim", "bleak"])\n'
    assert word_tables(source) == [("TONE", 6), ("WORDS", 6)]


def test_no_word_table_lives_in_python_code() -> None:
    tables = [
        f"{path.relative_to(ROOT)}:{name} ({n} strings)"
        for package in ("edge", "moviemind_core")
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, n in word_tables(path.read_text())
        if (str(path.relative_to(ROOT)), name) not in NOT_WORDS
    ]
    assert not tables, "word tables belong in moviemind_core/lexicon/data: " + ", ".join(tables)
