"""The edge's layering: the service raises domain errors, and HTTP maps every one of them."""

from __future__ import annotations

import subprocess
import sys

from edge.errors import EdgeError
from edge.http.errors import DOMAIN_ERRORS
from tests.support.servers import ROOT


def test_every_domain_error_has_its_status_in_the_one_mapping() -> None:
    assert set(EdgeError.__subclasses__()) == set(DOMAIN_ERRORS)
    statuses = {status for status, _ in DOMAIN_ERRORS.values()}
    assert statuses <= {404, 422, 503}


def test_the_service_layer_does_not_know_http() -> None:
    code = "import sys, edge.service, edge.index_store; print('litestar' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
