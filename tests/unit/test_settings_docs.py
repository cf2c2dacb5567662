"""The README settings tables list exactly the variables each tier reads, with their defaults."""

from __future__ import annotations

import re

import msgspec
import pytest

from edge.settings import variables as edge_variables
from index_builder.sources.tmdb_api import TmdbSettings
from model_server.settings import PREFIX as MODEL_PREFIX
from model_server.settings import Settings as ModelSettings
from moviemind_core.config import env_names
from moviemind_core.storage import S3Settings
from tests.support.servers import ROOT

_ROW = re.compile(r"^\| `(MOVIEMIND_[A-Z0-9_]+)` \| ([^|]*) \|")
REQUIRED = object()  # a field without a default


def readme_table(heading: str) -> dict[str, str]:
    """variable -> default cell of the table under `### heading`."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"### {heading}", 1)[1].split("\n#", 1)[0]
    return {m[1]: m[2].strip() for line in section.splitlines() if (m := _ROW.match(line))}


def struct_variables(cls: type[msgspec.Struct], prefix: str) -> dict[str, object]:
    defaults = {
        f.name: (REQUIRED if f.required else f.default) for f in msgspec.structs.fields(cls)
    }
    return {prefix + suffix: defaults[field] for field, suffix in env_names(cls).items()}


def shown(value: object) -> str | None:
    """How the README writes a default; None where it describes an empty one in words."""
    if value is REQUIRED or value in (None, "", ()):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


TABLES = {
    "Edge": edge_variables,
    "Model server": lambda: struct_variables(ModelSettings, MODEL_PREFIX),
    "Object storage": lambda: struct_variables(S3Settings, "MOVIEMIND_S3_"),
    "TMDB source": lambda: struct_variables(TmdbSettings, "MOVIEMIND_TMDB_"),
}


@pytest.mark.parametrize("heading", sorted(TABLES))
def test_readme_table_matches_the_settings_struct(heading: str) -> None:
    documented = readme_table(heading)
    read = TABLES[heading]()
    assert sorted(documented) == sorted(read)
    wrong = {}
    for name, default in read.items():
        cell = documented[name]
        want = shown(default)
        if want is None:
            ok = cell.startswith("(")  # "(none)", "(required)", "(AWS)", ...
        elif isinstance(default, int | float) and not isinstance(default, bool):
            ok = cell.strip("`").replace(".", "", 1).isdigit() and float(cell.strip("`")) == default
        else:
            ok = cell == f"`{want}`"
        if not ok:
            wrong[name] = (cell, want)
    assert not wrong, wrong
