"""moviemind_core.config: the one way every tier reads its MOVIEMIND_* settings."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import pytest

from moviemind_core.config import SettingsError, read_env, reject_unknown


class Demo(msgspec.Struct, frozen=True, kw_only=True):
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 80
    ratio: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    mode: Literal["fast", "exact"] = "fast"
    origins: tuple[str, ...] = ()
    secret: str | None = None
    on: bool = True

    def __post_init__(self) -> None:
        if self.mode == "exact" and self.ratio != 1.0:
            raise ValueError("ratio: must be 1 in exact mode")


def test_values_are_converted_by_the_fields_types() -> None:
    env = {
        "X_PORT": " 8080 ",
        "X_MODE": "FAST",
        "X_ORIGINS": "a, b,",
        "X_SECRET": " s ",
        "X_ON": "off",
        "X_RATIO": "",
    }
    got = read_env(Demo, env, "X_", verbatim=("secret",))
    assert got == Demo(port=8080, mode="fast", origins=("a", "b"), secret=" s ", on=False)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"X_PORT": "http"}, "X_PORT='http' is not an integer"),
        ({"X_PORT": "0"}, "X_PORT=0 is out of range [1, 65535]"),
        ({"X_RATIO": "0"}, "X_RATIO=0.0 is out of range: must be > 0"),
        ({"X_MODE": "slow"}, "X_MODE='slow' must be one of exact, fast"),
        ({"X_ON": "maybe"}, "X_ON='maybe' is not a boolean"),
        ({"X_MODE": "exact", "X_RATIO": "2"}, "X_RATIO: must be 1 in exact mode"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        read_env(Demo, env, "X_")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_names_with_the_prefix_are_rejected() -> None:
    reject_unknown({"X_PORT": "1", "Y_PROT": "1"}, "X_", {"PORT"})
    with pytest.raises(SettingsError, match="unknown setting X_PROT; did you mean X_PORT"):
        reject_unknown({"X_PROT": "1"}, "X_", {"PORT"})


def test_a_misspelt_tmdb_setting_is_rejected() -> None:
    from index_builder.sources.tmdb_api import TmdbSettings, TmdbSettingsError

    env = {"MOVIEMIND_TMDB_TOKEN": "t", "MOVIEMIND_TMDB_PAGE": "3"}
    with pytest.raises(TmdbSettingsError, match="unknown setting MOVIEMIND_TMDB_PAGE; did you"):
        TmdbSettings.from_env(env)
