"""Run the rendered cloud-init topology under podman: the compose files as written, plus
stand-ins for the two Linode pieces that cannot run here (the NodeBalancers).

- `Host` starts one instance's compose file the way `docker compose up` would: its default
  network with the same subnet, ip_range and gateway, the same fixed addresses, the services in
  depends_on order, with the same user, capabilities, sysctls, read-only root, tmpfs, volumes,
  env_file and extra_hosts. Unknown compose keys fail loudly: nothing is silently dropped.
- `TcpNodeBalancer` is an edge region's NodeBalancer in TCP mode with PROXY protocol v2: it
  tells Caddy each client's own address and connects from the NodeBalancer's VPC range.
- `HttpsNodeBalancer` is a model region's NodeBalancer in HTTPS mode: it terminates TLS with
  the region's chain, refuses a non-RSA key as Linode does, checks /readyz on every node, and
  sends each request to a ready node (least connections), draining removed ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINE = ["podman", "--runtime", "runc"]
# podman under runc here cannot raise rlimits to its defaults (scripts/container_engine.sh).
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
SUPPORTED_KEYS = {
    "image",
    "restart",
    "env_file",
    "environment",
    "read_only",
    "security_opt",
    "cap_drop",
    "cap_add",
    "tmpfs",
    "extra_hosts",
    "volumes",
    "ports",
    "networks",
    "user",
    "sysctls",
    "depends_on",
    "profiles",
    "healthcheck",
    "command",
}


class TopologyError(Exception):
    """The rendered topology cannot be started as written."""


def engine(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """One podman command (runc runtime); raises TopologyError with its output on failure."""
    proc = subprocess.run([*ENGINE, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise TopologyError(f"podman {' '.join(args[:3])}: {proc.stderr.strip()[-600:]}")
    return proc


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = env.get(name, "")
        if op == ":?" and not value:
            raise TopologyError(f"required variable {name} is missing: {arg}")
        if op == ":-" and not value:
            return arg or ""
        return value

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", sub, text)


def start_order(services: dict[str, dict]) -> list[str]:
    """Services in depends_on order (compose starts dependencies first)."""
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise TopologyError(f"dependency cycle at {name}")
        deps = services[name].get("depends_on") or []
        for dep in deps if isinstance(deps, list) else list(deps):
            visit(dep, (*path, name))
        done.append(name)

    for name in services:
        visit(name, ())
    return done


@dataclass
class Host:
    """One instance: its compose project, under a prefix of its own (two instances of the
    same tier run side by side during a rollout, as they do on two machines)."""

    name: str
    compose: dict[str, Any]
    files: dict[str, str]  # host path -> content (cloud-init write_files)
    workdir: Path
    images: dict[str, str]  # image in the compose file -> local image
    host_ip: str = "0.0.0.0"  # noqa: S104 - what "80:80" binds to on the instance
    host_ports: dict[int, int] = field(default_factory=dict)  # instance port -> port here
    env: dict[str, str] = field(default_factory=dict)  # compose variables (--env-file)
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    extra_hosts: dict[str, list[str]] = field(default_factory=dict)
    host_paths: dict[str, str] = field(default_factory=dict)  # instance path -> path here
    extra_volumes: dict[str, list[str]] = field(default_factory=dict)  # test-only mounts
    ip_map: dict[str, str] = field(default_factory=dict)  # instance address prefix -> here
    profiles: tuple[str, ...] = ()
    started: list[str] = field(default_factory=list)

    def container(self, service: str) -> str:
        return f"{self.name}-{service}"

    @property
    def network(self) -> str:
        return f"{self.name}-default"

    def path(self, instance_path: str) -> str:
        """Where an instance path lives here: a written file, or a mapped directory."""
        for prefix, local in self.host_paths.items():
            if instance_path == prefix or instance_path.startswith(prefix + "/"):
                return local + instance_path[len(prefix) :]
        if instance_path in self.files:
            local = self.workdir / instance_path.lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(self.files[instance_path])
            local.chmod(0o644)
            return str(local)
        raise TopologyError(f"{self.name}: {instance_path} is neither written nor mapped")

    def up(self) -> None:
        """`docker compose up --detach`, as written."""
        self.down()
        nets = self.compose.get("networks", {}).get("default", {})
        args = ["network", "create"]
        for pool in (nets.get("ipam") or {}).get("config", []):
            args += ["--subnet", pool["subnet"]]
            if "ip_range" in pool:
                args += ["--ip-range", pool["ip_range"]]
            if "gateway" in pool:
                args += ["--gateway", pool["gateway"]]
        engine(*args, self.network)
        services = self.compose["services"]
        for service in start_order(services):
            spec = services[service]
            if spec.get("profiles") and not set(spec["profiles"]) & set(self.profiles):
                continue
            self.run(service, spec)

    def run(self, service: str, spec: dict[str, Any]) -> None:
        unknown = set(spec) - SUPPORTED_KEYS
        if unknown:
            raise TopologyError(f"{service}: compose keys this runner does not model: {unknown}")
        args = ["run", "--detach", "--name", self.container(service), *LIMITS]
        args += ["--network", self.network, "--network-alias", service]
        for net in (spec.get("networks") or {}).values():
            if isinstance(net, dict) and "ipv4_address" in net:
                args += ["--ip", net["ipv4_address"]]
        if spec.get("restart"):
            args += ["--restart", spec["restart"]]
        if spec.get("read_only"):
            args.append("--read-only")
        for opt in spec.get("security_opt", []):
            args += ["--security-opt", opt.replace(":true", "")]
        for cap in spec.get("cap_drop", []):
            args += ["--cap-drop", cap]
        for cap in spec.get("cap_add", []):
            args += ["--cap-add", cap]
        for mount in spec.get("tmpfs", []):
            args += ["--tmpfs", mount]
        if "user" in spec:
            args += ["--user", spec["user"]]
        for key, value in (spec.get("sysctls") or {}).items():
            args += ["--sysctl", f"{key}={value}"]
        env: dict[str, str] = {}
        for env_file in spec.get("env_file", []):
            for line in Path(self.path(env_file)).read_text().splitlines():
                if line and not line.startswith("#"):
                    k, v = line.split("=", 1)
                    env[k] = v
        env.update({k: str(v) for k, v in (spec.get("environment") or {}).items()})
        env.update(self.env_overrides.get(service, {}))
        for k, v in env.items():
            args += ["--env", f"{k}={v}"]
        hosts = self.extra_hosts.get(service, spec.get("extra_hosts") or [])
        for entry in hosts:
            args += ["--add-host", entry]
        for volume in spec.get("volumes", []):
            source, target, *mode = volume.split(":")
            # Host paths as written (or mapped); named volumes are the instance's own.
            source = self.path(source) if source.startswith("/") else f"{self.name}-{source}"
            args += ["--volume", ":".join([source, target, *mode])]
        for volume in self.extra_volumes.get(service, []):
            args += ["--volume", volume]
        for port in spec.get("ports", []):
            text = interpolate(port, self.env)
            for prefix, local in self.ip_map.items():
                text = text.replace(prefix, local)
            parts = text.split(":")
            host_ip, host_port, container_port = (
                parts if len(parts) == 3 else [self.host_ip, *parts]
            )
            mapped = self.host_ports.get(int(host_port), int(host_port))
            args += ["--publish", f"{host_ip}:{mapped}:{container_port}"]
        check = spec.get("healthcheck")
        if check:
            args += ["--health-cmd", subprocess.list2cmdline(check["test"][1:])]
        image = self.images.get(spec["image"], spec["image"])
        args.append(image)
        args += list(spec.get("command", []))
        engine(*args)
        self.started.append(service)

    def logs(self, service: str, lines: int = 30) -> str:
        proc = engine("logs", "--tail", str(lines), self.container(service), check=False)
        return proc.stdout + proc.stderr

    def ip(self, service: str) -> str:
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return engine("inspect", "--format", fmt, self.container(service)).stdout.strip()

    def down(self) -> None:
        for service in self.compose["services"]:
            engine("rm", "--force", "--volumes", self.container(service), check=False)
        engine("network", "rm", "--force", self.network, check=False)
        for volume in self.compose.get("volumes", {}):
            engine("volume", "rm", "--force", f"{self.name}-{volume}", check=False)


# ------------------------------------------------------------------------ the NodeBalancers


def relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join(timeout=300)
    a.close()
    b.close()


def proxy_v2_header(src: tuple, dst: tuple) -> bytes:
    """A PROXY protocol v2 header (PROXY command, TCP over IPv4 or IPv6)."""
    signature = b"\r\n\r\n\x00\r\nQUIT\n"
    if ":" in src[0]:
        body = socket.inet_pton(socket.AF_INET6, src[0]) + socket.inet_pton(
            socket.AF_INET6, dst[0] if ":" in dst[0] else "::ffff:" + dst[0]
        )
        family = 0x21
    else:
        body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0])
        family = 0x11
    body += struct.pack("!HH", src[1], dst[1])
    return signature + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


class Listener:
    """Accept loops on several addresses; each connection handled in its own thread."""

    def __init__(self, addresses: list[tuple[str, int]], handle) -> None:
        self.socks = []
        for host, port in addresses:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            s.listen(64)
            self.socks.append(s)
            threading.Thread(target=self._accept, args=(s, handle), daemon=True).start()

    def _accept(self, s: socket.socket, handle) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, peer = s.accept()
                threading.Thread(target=handle, args=(conn, peer), daemon=True).start()

    def close(self) -> None:
        for s in self.socks:
            s.close()


class TcpNodeBalancer:
    """An edge NodeBalancer port: TCP passthrough to the node, with a PROXY v2 header that
    carries the client's own address (IPv4 or IPv6)."""

    def __init__(self, listen: list[tuple[str, int]], node: tuple[str, int]) -> None:
        self.node = node
        self.listener = Listener(listen, self.handle)

    def handle(self, client: socket.socket, peer: tuple) -> None:
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            up.connect(self.node)
            local = client.getsockname()
            up.sendall(proxy_v2_header(peer[:2], local[:2]))
        except OSError:
            client.close()
            up.close()
            return
        relay(client, up)

    def close(self) -> None:
        self.listener.close()


class NodeBalancerRefused(Exception):
    """What the Linode API answers for a certificate a NodeBalancer cannot use."""


@dataclass
class Node:
    address: tuple[str, int]
    up: bool = False
    mode: str = "accept"  # accept | drain
    active: int = 0


class HttpsNodeBalancer:
    """A model NodeBalancer config: protocol https, check http /readyz, leastconn."""

    def __init__(self, listen: tuple[str, int], cert_pem: str, key_pem: str, tmp: Path) -> None:
        # Linode: "Certificates using the ECDSA algorithm are not supported" (NodeBalancer TLS
        # guide): a non-RSA key is refused when the configuration is created.
        if "BEGIN RSA PRIVATE KEY" not in key_pem and not _is_rsa_pkcs8(key_pem, tmp):
            raise NodeBalancerRefused("ssl_key: only RSA keys are supported")
        (tmp / "nb.pem").write_text(cert_pem)
        (tmp / "nb.key").write_text(key_pem)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(tmp / "nb.pem", tmp / "nb.key")
        self.nodes: dict[str, Node] = {}
        self.lock = threading.Lock()
        self.served = 0
        self.stop = threading.Event()
        self.listener = Listener([listen], self.handle)
        threading.Thread(target=self.check_loop, daemon=True).start()

    def add(self, label: str, address: tuple[str, int]) -> None:
        with self.lock:
            self.nodes[label] = Node(address)

    def drain(self, label: str) -> None:
        with self.lock:
            self.nodes[label].mode = "drain"

    def remove(self, label: str, timeout: float = 120) -> None:
        """Drain, wait for the node's open requests, then forget it."""
        self.drain(label)
        deadline = time.time() + timeout
        while self.nodes[label].active and time.time() < deadline:
            time.sleep(0.2)
        with self.lock:
            del self.nodes[label]

    def status(self, label: str) -> str:
        return "UP" if self.nodes[label].up else "DOWN"

    def check_loop(self) -> None:
        while not self.stop.is_set():
            for node in list(self.nodes.values()):
                host, port = node.address
                try:
                    with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=3) as r:
                        node.up = r.status == 200
                except OSError:
                    node.up = False
            self.stop.wait(1.0)

    def pick(self) -> Node | None:
        with self.lock:
            ready = [n for n in self.nodes.values() if n.up and n.mode == "accept"]
            if not ready:
                return None
            node = min(ready, key=lambda n: n.active)
            node.active += 1
            return node

    def handle(self, raw: socket.socket, peer: tuple) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    client.close()
                    return
                head += chunk
        except (OSError, ssl.SSLError):
            raw.close()
            return
        node = self.pick()
        if node is None:
            client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        # One request per connection to the node: a drained node then finishes what it has.
        request, rest = head.split(b"\r\n\r\n", 1)
        lines = [ln for ln in request.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
        request = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + rest
        try:
            up = socket.create_connection(node.address, timeout=300)
            up.sendall(request)
            self.served += 1
            relay(client, up)
        except OSError:
            client.close()
        finally:
            with self.lock:
                node.active -= 1

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def _is_rsa_pkcs8(key_pem: str, tmp: Path) -> bool:
    """Whether a PEM private key (PKCS#8 or traditional) is an RSA key."""
    key = tmp / "probe.key"
    key.write_text(key_pem)
    proc = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-noout", "-text"], capture_output=True, text=True
    )
    return "modulus:" in proc.stdout


def make_chain(tmp: Path, algorithm: str, name: str) -> tuple[str, str, str]:
    """A CA and a leaf for `name`, with tls.tf's key algorithm: (ca_pem, chain_pem, key_pem)."""
    newkey = (
        ["-newkey", "rsa:2048"]
        if algorithm == "RSA"
        else [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]
    )
    run = lambda *a: subprocess.run(a, cwd=tmp, capture_output=True, check=True)  # noqa: E731
    run("openssl", "req", "-x509", *newkey, "-nodes", "-days", "2", "-subj", "/CN=topology CA",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("openssl", "req", *newkey, "-nodes", "-subj", f"/CN={name}", "-keyout", "leaf.key",
        "-out", "leaf.csr")  # fmt: skip
    (tmp / "leaf.ext").write_text(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", "leaf.pem")  # fmt: skip
    ca = (tmp / "ca.pem").read_text()
    return ca, (tmp / "leaf.pem").read_text() + ca, (tmp / "leaf.key").read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, probe, timeout: float, interval: float = 1.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(interval)
    raise TopologyError(f"{what} not within {timeout:.0f} s")


def environment_summary() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    return f"{os.cpu_count()} CPUs ({cpu})"
