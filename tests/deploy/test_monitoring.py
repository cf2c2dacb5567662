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
