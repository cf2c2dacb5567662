"""The versioned objectives (objectives.toml) and the check of a run's samples against them."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import msgspec

from devstack.stats import percentile
from loadtests.report import Sample

DEFAULT_PATH = Path(__file__).with_name("objectives.toml")
Kind = Literal["latency", "failures", "degraded_within", "timeouts", "flag"]


class ObjectivesError(ValueError):
    """objectives.toml is malformed; the message says which entry and why."""


class Objective(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    phase: str
    kind: Kind
    entry: str | None = None
    percentile: float = 95.0
    max_ms: float | None = None
    max_count: int = 0
    flag: str | None = None
    modes: tuple[str, ...] = ("default",)
    note: str = ""

    def describe(self) -> str:
        """A short human statement of the promise."""
        if self.kind == "latency":
            return f"{self.entry} p{self.percentile:g} <= {self.max_ms:g} ms"
        if self.kind == "failures":
            return f"failed requests <= {self.max_count}"
        if self.kind == "degraded_within":
            which = "every" if self.percentile >= 100 else f"p{self.percentile:g} of"
            return f"{which} degraded {self.entry} within {self.max_ms:g} ms"
        if self.kind == "timeouts":
            return f"timeouts <= {self.max_count}"
        return f"{self.flag} is true"


class ObjectiveSet(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    changed: str = ""
    basis: str = ""
    objective: tuple[Objective, ...] = ()


def load_objectives(path: Path = DEFAULT_PATH) -> ObjectiveSet:
    """Parse and validate objectives.toml."""
    try:
        raw = tomllib.loads(path.read_text())
        objectives = msgspec.convert(raw, ObjectiveSet)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ObjectivesError(f"{path}: {exc}") from None
    seen: set[str] = set()
    for o in objectives.objective:
        if o.id in seen:
            raise ObjectivesError(f"{path}: objective id {o.id!r} appears twice")
        seen.add(o.id)
        if o.kind in ("latency", "degraded_within") and (o.entry is None or o.max_ms is None):
            raise ObjectivesError(f"{path}: objective {o.id!r} ({o.kind}) needs entry and max_ms")
        if o.kind == "flag" and not o.flag:
            raise ObjectivesError(f"{path}: objective {o.id!r} (flag) needs flag")
        if not 0 < o.percentile <= 100:
            raise ObjectivesError(f"{path}: objective {o.id!r}: percentile must be in (0, 100]")
    return objectives


@dataclass
class PhaseResult:
    """What one phase produced: its samples (already cut to the phase) and named facts."""

    name: str
    samples: list[Sample]
    flags: dict[str, bool] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    objective: Objective
    measured: str
    passed: bool
    enforced: bool

    @property
    def status(self) -> str:
        if not self.enforced:
            return "info"
        return "PASS" if self.passed else "FAIL"


def is_timeout(s: Sample) -> bool:
    """Did this request end by waiting out a timeout somewhere?"""
    if s.extra.get("reason") == "upstream_timeout":
        return True
    text = (s.err or "").lower()
    return "504" in text or "timed out" in text or "timeout" in text


def _check(o: Objective, phase: PhaseResult) -> tuple[str, bool]:
    samples = phase.samples
    if o.kind == "latency":
        values = [s.ms for s in samples if s.name == o.entry]
        value = percentile(values, o.percentile)
        if value is None:
            return f"no {o.entry} requests", False
        return f"{value:.1f} ms over {len(values)} requests", value <= (o.max_ms or 0)
    if o.kind == "failures":
        failed = [s for s in samples if not s.ok]
        detail = f"{len(failed)} of {len(samples)}"
        if failed:
            kinds: dict[str, int] = {}
            for s in failed:
                key = f"{s.name}: {(s.err or '?')[:60]}"
                kinds[key] = kinds.get(key, 0) + 1
            detail += (
                " ("
                + "; ".join(
                    f"{n}x {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3]
                )
                + ")"
            )
        return detail, len(failed) <= o.max_count
    if o.kind == "degraded_within":
        values = [s.ms for s in samples if s.name == o.entry and s.extra.get("degraded")]
        value = percentile(values, o.percentile)
        if value is None:
            # The phase is meant to push past capacity; no degraded answer means it did not.
            return "no degraded answers: load did not exceed model capacity", False
        return f"p{o.percentile:g} {value:.0f} ms over {len(values)} degraded answers", value <= (
            o.max_ms or 0
        )
    if o.kind == "timeouts":
        n = sum(1 for s in samples if is_timeout(s))
        return f"{n} of {len(samples)}", n <= o.max_count
    value = phase.flags.get(o.flag or "")
    if value is None:
        return "not measured", False
    return str(value).lower(), bool(value)


def check(objectives: ObjectiveSet, phases: Mapping[str, PhaseResult], mode: str) -> list[Verdict]:
    """Every objective whose phase ran, measured; enforced when `mode` is in its modes."""
    out = []
    for o in objectives.objective:
        phase = phases.get(o.phase)
        if phase is None:
            continue
        measured, passed = _check(o, phase)
        out.append(Verdict(o, measured, passed, mode in o.modes))
    return out


def missed(verdicts: Sequence[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.enforced and not v.passed]
