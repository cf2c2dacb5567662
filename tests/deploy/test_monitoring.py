"""The optional Prometheus (monitoring = true): its configurations and alert rules are valid,
each alert fires on the series that should trigger it (promtool's rule unit tests), and every
metric the rules read is one the tiers really export, with the labels the rules use."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from edge.metrics import EdgeMetrics
from model_server.metrics import Metrics as ModelMetrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "terraform" / "monitoring"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@needs_promtool
def test_alert_rules_are_valid() -> None:
    proc = promtool("check", "rules", "alerts.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_alerts_fire_when_they_should_and_only_then() -> None:
    proc = promtool("test", "rules", "alerts_test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
@pytest.mark.parametrize("tier", ["edge", "model"])
def test_prometheus_configurations_are_valid(tier: str, tmp_path: Path) -> None:
    """The configuration as the instance mounts it: rules at /etc/prometheus/alerts.yml."""
    config = yaml.safe_load((MONITORING / f"prometheus-{tier}.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = promtool("check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job,) = config["scrape_configs"]
    target = {"edge": "edge:8000", "model": "model_server:8001"}[tier]
    assert job["static_configs"] == [{"targets": [target]}]


def exported() -> dict[str, set[str]]:
    """Every sample name the two tiers export, with its label names (after one observation)."""
    edge, model = EdgeMetrics(), ModelMetrics()
    edge.requests.labels("/v1/recommend", "200").inc()
    edge.degraded.labels("breaker_open").inc()
    edge.breaker_opens.labels("https://mm-us-ord.moviemind.internal:8443").inc()
    model.errors.labels(type="queue_full").inc()
    names: dict[str, set[str]] = {}
    for text in (edge.render(), model.render()):
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_rules_read_only_metrics_the_tiers_export() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    names = exported()
    used = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name, labels in re.findall(r"(moviemind_[a-z_]+)(?:\{([^}]*)\})?", rule["expr"]):
                assert name in names, f"{rule['alert']}: {name} is not exported"
                for label in re.findall(r"([a-z_]+)\s*=~?", labels):
                    assert label in names[name], f"{rule['alert']}: {name} has no {label}"
                used.add(name)
    assert {
        "moviemind_edge_degraded_total",
        "moviemind_edge_breaker_opens_total",
        "moviemind_edge_requests_total",
        "moviemind_model_errors_total",
    } <= used


# ------------------------------------------------------------- Alertmanager (issue 20)

AMTOOL = shutil.which("amtool")


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_alertmanager_configuration_routes_to_a_webhook_from_a_file() -> None:
    """The structure, checked in Python whether or not amtool is installed: one webhook
    receiver whose URL comes from the root-only file cloud-init writes, and both Prometheus
    configurations send their alerts to the Alertmanager beside them."""
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    for route in config["route"].get("routes", []):
        assert route["receiver"] in receivers
    for receiver in receivers.values():
        (hook,) = receiver["webhook_configs"]
        assert hook["url_file"] == "/etc/alertmanager/webhook-url" and "url" not in hook
    for tier in ("edge", "model"):
        prom = yaml.safe_load((MONITORING / f"prometheus-{tier}.yml").read_text())
        (am,) = prom["alerting"]["alertmanagers"]
        assert am["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    assert len(alert_rules()) == 8


def amtool_config(tmp_path: Path) -> Path:
    """alertmanager.yml for the local amtool. The deployed Alertmanager (v0.28) reads the
    webhook URL from url_file; Debian's amtool 0.25 predates that field, so this copy has the
    URL inline (the rest is checked as written)."""
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        hook = receiver["webhook_configs"][0]
        version = subprocess.run([str(AMTOOL), "--version"], capture_output=True, text=True)
        if "version 0.25." in version.stdout + version.stderr:
            del hook["url_file"]
            hook["url"] = "https://hooks.example.com/moviemind"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (prometheus-alertmanager)")
def test_alertmanager_configuration_is_valid(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(AMTOOL), "check-config", str(amtool_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (prometheus-alertmanager)")
def test_every_alert_reaches_the_webhook(tmp_path: Path) -> None:
    """amtool's routing test for each of the alert rules, with its own labels."""
    config = amtool_config(tmp_path)
    for rule in alert_rules():
        labels = [f"alertname={rule['alert']}", "tier=edge"]
        labels += [f"{k}={v}" for k, v in rule.get("labels", {}).items()]
        proc = subprocess.run(
            [
                str(AMTOOL),
                "config",
                "routes",
                "test",
                f"--config.file={config}",
                "--verify.receivers=moviemind-webhook",
                *labels,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, (rule["alert"], proc.stdout + proc.stderr)
