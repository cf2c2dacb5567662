"""The dev-stack launcher under the names the tests import (`devstack` is its one home)."""

from __future__ import annotations

from devstack.process import ROOT, free_port
from devstack.process import ServerProcess as Server
from devstack.servers import start_edge, start_model_server

__all__ = ["ROOT", "Server", "free_port", "start_edge", "start_model_server"]
