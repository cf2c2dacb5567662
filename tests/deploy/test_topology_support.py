"""The rendered-topology runner's own parts, without podman: compose interpolation and start
order, the PROXY protocol v2 header, and the model NodeBalancer stand-in's certificate rule."""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

import pytest

from tests.deploy.topology import (
    HttpsNodeBalancer,
    NodeBalancerRefused,
    TopologyError,
    interpolate,
    make_chain,
    proxy_v2_header,
    start_order,
)


def test_interpolation_follows_compose() -> None:
    env = {"MOVIEMIND_VPC_IP": "10.77.0.9"}
    assert interpolate("${MOVIEMIND_VPC_IP:?no}:8001:8001", env) == "10.77.0.9:8001:8001"
    assert interpolate("${MISSING:-x} $$HOME", env) == "x $HOME"
    with pytest.raises(TopologyError, match="required variable MISSING"):
        interpolate("${MISSING:?the VPC address}", env)


def test_dependencies_start_first() -> None:
    services = {"caddy": {"depends_on": ["edge"]}, "edge": {}, "prometheus": {}}
    order = start_order(services)
    assert order.index("edge") < order.index("caddy")
    with pytest.raises(TopologyError, match="cycle"):
        start_order({"a": {"depends_on": ["b"]}, "b": {"depends_on": ["a"]}})


def test_proxy_v2_header_layout() -> None:
    """The PROXY protocol v2 spec: 12-byte signature, version 2 + PROXY command, family and
    protocol, length, then addresses and ports."""
    header = proxy_v2_header(("203.0.113.7", 51000), ("10.78.0.6", 443))
    assert header[:12] == b"\r\n\r\n\x00\r\nQUIT\n"
    assert header[12] == 0x21 and header[13] == 0x11  # v2 PROXY, TCP over IPv4
    (length,) = struct.unpack("!H", header[14:16])
    assert length == 12 and len(header) == 28
    assert socket.inet_ntoa(header[16:20]) == "203.0.113.7"
    assert struct.unpack("!HH", header[24:28]) == (51000, 443)
    v6 = proxy_v2_header(("2001:db8::7", 51000), ("10.78.0.6", 443))
    assert v6[13] == 0x21 and struct.unpack("!H", v6[14:16]) == (36,)
    assert socket.inet_ntop(socket.AF_INET6, v6[16:32]) == "2001:db8::7"


def test_model_nodebalancer_stand_in_refuses_ecdsa_and_serves_rsa(tmp_path: Path) -> None:
    """Linode: "Certificates using the ECDSA algorithm are not supported" (NodeBalancer TLS
    guide). The stand-in enforces it, so the topology test fails for an ECDSA tls.tf."""
    ec = tmp_path / "ec"
    ec.mkdir()
    _, chain, key = make_chain(ec, "ECDSA", "mm-us-ord.moviemind.internal")
    with pytest.raises(NodeBalancerRefused):
        HttpsNodeBalancer(("127.0.0.1", 0), chain, key, ec)
    rsa = tmp_path / "rsa"
    rsa.mkdir()
    ca, chain, key = make_chain(rsa, "RSA", "mm-us-ord.moviemind.internal")
    nb = HttpsNodeBalancer(("127.0.0.1", 0), chain, key, rsa)
    try:
        port = nb.listener.socks[0].getsockname()[1]
        ctx = ssl.create_default_context(cadata=ca)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="mm-us-ord.moviemind.internal") as tls,
        ):
            tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            # No node is ready yet: the NodeBalancer answers 503 itself.
            assert tls.recv(100).startswith(b"HTTP/1.1 503")
            assert tls.getpeercert()["subject"][0][0][1] == "mm-us-ord.moviemind.internal"
    finally:
        nb.close()
