"""The deployment's feedback store (issue 22 item 3): a writable, persistent place for the
votes in every edge container, and an optional Linode managed PostgreSQL that only the edges
can reach, over verified TLS.

The rendered documents come from test_cloud_init's renderer; the Terraform side from the
provider-free harness of test_terraform (resources replaced by stub values).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from tests.deploy.test_cloud_init import (
    FEEDBACK_CA,
    FEEDBACK_SQLITE,
    TEMPLATES,
    check_document,
    edge_inputs,
    env_of,
    files_of,
    render,
    rendered_documents,
    stubs,
)
from tests.deploy.test_terraform import (
    EXAMPLES,
    ROOT,
    TF,
    build_harness,
    example_inputs,
    hcl_value,
    resources,
    secret_args,
    terraform,
    validation_failures,
)

MULTI = TF / "examples" / "multi-region.tfvars"


def edge_env(values: dict[str, Any], edge: str, regions, locals_) -> tuple[dict, dict, dict]:
    """(edge.env, compose, files) of one edge's rendered user-data, checked as a whole."""
    text = render(TEMPLATES["edge"].read_text(), edge_inputs(values, edge, regions, locals_))
    doc = check_document("edge", edge, text, values, regions)
    files = files_of(doc)
    compose = yaml.safe_load(files["/etc/moviemind/compose.yaml"])
    return env_of(files["/etc/moviemind/edge.env"]), compose, files


# ----------------------------------------------------------------------- the edge container


def test_edge_image_has_a_feedback_volume_owned_by_its_user() -> None:
    """Read-only root: the spool and the SQLite file need a directory of their own, a volume
    that the edge's user (10001) owns, with the settings pointing into it."""
    text = (ROOT / "edge" / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM ") :]
    assert re.search(r"mkdir -p [^\n]*/app/var/feedback", final)
    assert re.search(r"chown -R moviemind:moviemind [^\n]*/app/var/feedback", final)
    (volume,) = re.findall(r"^VOLUME (.+)$", final, re.M)
    assert "/app/var/feedback" in json.loads(volume)
    assert "MOVIEMIND_EDGE_FEEDBACK_URL=/app/var/feedback/feedback.sqlite3" in final
    assert "MOVIEMIND_EDGE_FEEDBACK_SPOOL=/app/var/feedback/spool.jsonl" in final
    assert final.index("chown") < final.index("USER 10001:10001")


def test_compose_keeps_votes_on_a_named_volume() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    edge = compose["services"]["edge"]
    assert "edge-feedback:/app/var/feedback" in edge["volumes"]
    assert "edge-feedback" in compose["volumes"]
    assert edge["environment"]["MOVIEMIND_EDGE_FEEDBACK_SPOOL"].startswith("/app/var/feedback/")
    assert "/app/var/feedback/" in edge["environment"]["MOVIEMIND_EDGE_FEEDBACK_URL"]


# ------------------------------------------------------------------ rendered edge user-data


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_without_a_database_each_edge_uses_sqlite_on_its_volume(
    variables, regions, locals_, example
) -> None:
    values = example_inputs(variables, example)
    assert not values["feedback_database"], "the examples keep the default (off)"
    for edge in values["edge_regions"]:
        env, compose, files = edge_env(values, edge, regions, locals_)
        assert env["MOVIEMIND_EDGE_FEEDBACK_URL"] == FEEDBACK_SQLITE
        assert env["MOVIEMIND_EDGE_FEEDBACK_SPOOL"] == "/app/var/feedback/spool.jsonl"
        assert "edge-feedback:/app/var/feedback" in compose["services"]["edge"]["volumes"]
        assert files[FEEDBACK_CA] == ""


def test_with_a_database_every_edge_gets_its_tls_url(variables, regions, locals_) -> None:
    values = {**example_inputs(variables, MULTI), "feedback_database": True}
    assert validation_failures(variables, values) == []
    db = stubs(values)["db"]
    urls = set()
    for edge in values["edge_regions"]:
        env, compose, files = edge_env(values, edge, regions, locals_)
        url = env["MOVIEMIND_EDGE_FEEDBACK_URL"]
        parts = urlsplit(url)
        assert parts.scheme == "postgresql"
        assert (parts.hostname, parts.port) == (db["host"], db["port"])
        # The awkward stub password survives percent-encoding.
        assert unquote(parts.username or "") == db["user"]
        assert unquote(parts.password or "") == db["password"]
        assert parts.query == f"sslmode=verify-full&sslrootcert={FEEDBACK_CA}"
        assert files[FEEDBACK_CA] == db["ca_pem"]
        # The spool stays on the volume even with a database: it holds votes while it is away.
        assert env["MOVIEMIND_EDGE_FEEDBACK_SPOOL"] == "/app/var/feedback/spool.jsonl"
        assert "edge-feedback:/app/var/feedback" in compose["services"]["edge"]["volumes"]
        urls.add(url)
    assert len(urls) == 1, "every region writes to the one database"


def test_the_edge_settings_accept_the_database_url(variables, regions, locals_, tmp_path) -> None:
    """The edge's own settings parser takes what cloud-init writes, both ways."""
    edge_settings = pytest.importorskip("edge.settings")
    ca = tmp_path / "model-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    base = example_inputs(variables, EXAMPLES[0])
    for on in (False, True):
        values = {**base, "feedback_database": on}
        env, _, _ = edge_env(values, values["edge_regions"][0], regions, locals_)
        env["MOVIEMIND_EDGE_UPSTREAM_CA_FILE"] = str(ca)
        s = edge_settings.load_settings(env)
        assert s.feedback.url == env["MOVIEMIND_EDGE_FEEDBACK_URL"]
        assert s.feedback.spool == "/app/var/feedback/spool.jsonl"


# ------------------------------------------------------------------------ terraform, static


def test_database_is_optional_and_reached_by_the_edges_only(tf, locals_) -> None:
    db = resources(tf, "linode_database_postgresql_v2")["feedback"]
    acl = resources(tf, "linode_database_access_controls")["feedback"]
    assert db["count"] == acl["count"] == "${var.feedback_database ? 1 : 0}"
    assert db["engine_id"] == "${var.feedback_database_engine}"
    assert db["type"] == "${var.feedback_database_type}"
    # One allow list, managed in one place (the provider overwrites one with the other).
    assert "allow_list" not in db
    assert hcl_value(acl["database_type"]) == "postgresql"
    assert acl["allow_list"] == "${local.feedback_allow_list}"
    allow = locals_["feedback_allow_list"]
    assert "local.edge_ipv4_cidr" in allow and "0.0.0.0/0" not in allow
    # The edges' firewall opens the database's port, and nothing more, when there is one.
    text = (TF / "edge.tf").read_text()
    rule = text[text.index('label    = "feedback-database"') :][:300]
    assert "ports    = tostring(linode_database_postgresql_v2.feedback[0].port)" in rule


def test_the_database_url_is_a_secret_of_the_user_data_only(tf) -> None:
    """Like the model token: in edge.env (root, 0600; containers cannot read the metadata
    service), never in an output."""
    outputs = {
        name: body for doc in tf.values() for b in doc.get("output", []) for name, body in b.items()
    }
    shown = json.dumps(outputs)
    assert "root_password" not in shown and "root_username" not in shown
    assert "local.feedback_url" not in shown and "feedback[0].ca_cert" not in shown
    template = TEMPLATES["edge"].read_text()
    env_block = template[template.index("path: /etc/moviemind/edge.env") :]
    env_block = env_block[: env_block.index("  - path:")]
    assert 'permissions: "0600"' in env_block and "owner: root:root" in env_block
    assert "MOVIEMIND_EDGE_FEEDBACK_URL=${feedback_url}" in env_block
    assert "-d 169.254.169.254/32 -j REJECT" in template


def test_feedback_variables_validate(variables) -> None:
    base = example_inputs(variables, EXAMPLES[0])
    assert hcl_value(variables["feedback_database"]["default"]) is False
    for name, bad in (
        ("feedback_database_engine", "mysql/8"),
        ("feedback_database_type", "nanode"),
        ("feedback_database_region", "Mars"),
        ("feedback_database_extra_allow", ["0.0.0.0/0"]),
        ("feedback_database_extra_allow", ["not-a-cidr"]),
    ):
        assert validation_failures(variables, {**base, name: bad}), (name, bad)
    good = {**base, "feedback_database_extra_allow": ["198.51.100.7/32"]}
    assert validation_failures(variables, good) == []


# -------------------------------------------------------------------- terraform, evaluated


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    if shutil.which("terraform") is None:
        pytest.skip("no terraform binary")
    dest = tmp_path_factory.mktemp("tf-feedback")
    build_harness(dest)
    terraform(["init", "-input=false", "-backend=false"], dest)
    return dest


def apply(harness: Path, tmp_path: Path, *extra: str) -> dict[str, Any]:
    state = tmp_path / f"s{len(list(tmp_path.iterdir()))}.tfstate"
    terraform(
        ["apply", "-auto-approve", "-input=false", f"-state={state}", f"-var-file={MULTI}"]
        + secret_args()
        + list(extra),
        harness,
    )
    out = terraform(["output", "-json", f"-state={state}"], harness).stdout
    return {k: v["value"] for k, v in json.loads(out).items()}


def test_real_terraform_allow_list_is_exactly_the_edges(
    harness, variables, regions, locals_, tmp_path
) -> None:
    values = {**example_inputs(variables, MULTI), "feedback_database": True}
    out = apply(harness, tmp_path, "-var=feedback_database=true")
    db = out["feedback_database"]
    # The harness's stub edges have public IPv4 203.0.113.(10 + i), one per edge region.
    edges = sorted(f"203.0.113.{10 + i}/32" for i in range(len(values["edge_regions"])))
    assert db["allow_list"] == edges
    assert (db["host"], db["port"], db["region"]) == (
        "lin-600-pgsql-primary.servers.linodedb.net",
        21847,
        values["index_region"],
    )
    # Every edge's user-data: the database URL, and identical to the Python rendering.
    ours = {
        key: text
        for tier, key, text in rendered_documents(variables, regions, locals_, MULTI, values)
        if tier == "edge"
    }
    assert out["harness_edge_user_data"] == ours
    for text in ours.values():
        env = env_of(files_of(yaml.safe_load(text))["/etc/moviemind/edge.env"])
        assert env["MOVIEMIND_EDGE_FEEDBACK_URL"].startswith("postgresql://linroot:stub%2Fp%40ss")
    shown = json.dumps({k: v for k, v in out.items() if not k.startswith("harness_")})
    assert "stub/p@ss" not in shown and "p%40ss" not in shown
    # Extra networks (the index builder's host) join the edges, nothing else does.
    out = apply(
        harness,
        tmp_path,
        "-var=feedback_database=true",
        '-var=feedback_database_extra_allow=["198.51.100.7/32"]',
        "-var=feedback_database_region=de-fra-2",
    )
    assert out["feedback_database"]["allow_list"] == sorted([*edges, "198.51.100.7/32"])
    assert out["feedback_database"]["region"] == "de-fra-2"


def test_real_terraform_without_database(harness, variables, tmp_path) -> None:
    out = apply(harness, tmp_path)
    # A null output is left out of `terraform output -json` altogether.
    assert out.get("feedback_database") is None
    assert out["estimated_cost"]["lines"]["feedback_database"]["count"] == 0
    for text in out["harness_edge_user_data"].values():
        env = env_of(files_of(yaml.safe_load(text))["/etc/moviemind/edge.env"])
        assert env["MOVIEMIND_EDGE_FEEDBACK_URL"] == FEEDBACK_SQLITE


def test_real_terraform_prices_the_database_only_when_told(harness, tmp_path) -> None:
    """No price is invented: unpriced, the line counts 0; a given price is added."""
    base = apply(harness, tmp_path)["estimated_cost"]
    unpriced = apply(harness, tmp_path, "-var=feedback_database=true")["estimated_cost"]
    assert unpriced["lines"]["feedback_database"]["count"] == 1
    assert unpriced["monthly_usd"] == base["monthly_usd"]
    priced = apply(
        harness,
        tmp_path,
        "-var=feedback_database=true",
        "-var=feedback_database_price={hourly = 0.02, monthly = 13}",
    )["estimated_cost"]
    assert priced["monthly_usd"] == pytest.approx(base["monthly_usd"] + 13)
    assert priced["hourly_usd"] == pytest.approx(base["hourly_usd"] + 0.02)


def test_real_terraform_gives_the_demo_preset_no_bucket_settings(harness, tmp_path) -> None:
    """Not feedback, but found by the same rendered-topology run: the demo preset downloads
    nothing, so its servers get no MOVIEMIND_MODEL_S3_* (the server refuses them without an
    s3:// URL); the reference preset's servers do."""
    demo = apply(
        harness,
        tmp_path,
        "-var=model_preset=smollm2-135m-demo",
        "-var=model_gguf_sha256=",
        "-var=model_instance_type=g6-standard-1",
    )
    reference = apply(harness, tmp_path)
    for out, bucket in ((demo, False), (reference, True)):
        for text in out["harness_model_user_data"].values():
            env = env_of(files_of(yaml.safe_load(text))["/etc/moviemind/model.env"])
            assert env["MOVIEMIND_MODEL_URL"].startswith("s3://") is bucket
            assert bool(env["MOVIEMIND_MODEL_S3_ENDPOINT"]) is bucket
            assert bool(env["MOVIEMIND_MODEL_S3_SECRET_KEY"]) is bucket
