"""moviemind_core.catalog: display titles, years, lookup keys."""

from __future__ import annotations

import pytest

from moviemind_core.catalog import display_title, lookup_key, split_title_year


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Matrix, The", "The Matrix"),
        ("Good, the Bad and the Ugly, The", "The Good, the Bad and the Ugly"),
        ("Avventura, L'", "L'Avventura"),
        (
            "Amelie (Fabuleux destin d'Amélie Poulain, Le)",
            "Amelie (Fabuleux destin d'Amélie Poulain, Le)",
        ),
        ("Matrix, The (1999)", "The Matrix (1999)"),
        ("Heat", "Heat"),
    ],
)
def test_display_title_moves_trailing_articles_to_the_front(raw: str, shown: str) -> None:
    assert display_title(raw) == shown


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ("Troy (2004)", ("Troy", 2004)),
        ("troy (2004) ", ("troy", 2004)),
        ("Mini-series (1999-2001)", ("Mini-series", 1999)),
        ("Troy", ("Troy", None)),
        ("1984 (1984)", ("1984", 1984)),
        ("(1999)", ("", 1999)),
    ],
)
def test_split_title_year(raw: str, parts: tuple[str, int | None]) -> None:
    assert split_title_year(raw) == parts


def test_lookup_key_normalises_case_accents_punctuation_and_articles() -> None:
    assert lookup_key("Matrix, The") == lookup_key("the MATRIX") == "the matrix"
    assert lookup_key("Amélie") == "amelie"
    assert lookup_key("Fast & Furious") == "fast and furious"
    assert lookup_key("Godfather: Part II, The") == "the godfather part ii"
    assert lookup_key("!!!") == ""
