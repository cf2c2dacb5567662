"""The parsed Terraform configuration, shared by the deploy tests (parsed once per module)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.test_terraform import blocks, hcl_value, load_tf, named


@pytest.fixture(scope="module")
def tf() -> dict[str, dict]:
    """Every terraform/*.tf file, parsed by python-hcl2, by file name."""
    return load_tf()


@pytest.fixture(scope="module")
def variables(tf) -> dict[str, dict]:
    """Variable blocks by name."""
    return dict(named(b) for b in blocks(tf, "variable"))


@pytest.fixture(scope="module")
def locals_(tf) -> dict[str, Any]:
    """Every local value, by name (unevaluated HCL)."""
    out: dict[str, Any] = {}
    for b in blocks(tf, "locals"):
        out.update({k: v for k, v in b.items() if not k.startswith("__")})
    return out


@pytest.fixture(scope="module")
def regions(locals_) -> dict[str, dict]:
    """local.regions: the Linode regions the deployment knows, with their settings."""
    return hcl_value(locals_["regions"])
