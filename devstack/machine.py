"""What a measurement ran on: CPU model and flags, cores, load average, Python; per-process CPU and memory."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import msgspec

# The flags that decide how fast the embedder and the GGUF engines run on a CPU.
CPU_FLAGS = ("avx", "avx2", "avx512f", "fma", "f16c")


class MachineInfo(msgspec.Struct, kw_only=True):
    """The machine a benchmark or load test ran on."""

    cpu: str
    flags: dict[str, bool]  # each of CPU_FLAGS: present or not
    cores: int  # usable by this process (its CPU affinity)
    cpu_count: int  # online in the machine
    load_average: tuple[float, float, float]  # 1, 5, 15 minutes, when this was read
    python: str
    os: str

    def describe(self) -> str:
        """One line: CPU, flags present and missing, cores, OS, Python."""
        have = [f for f, on in self.flags.items() if on]
        lack = [f for f, on in self.flags.items() if not on]
        flags = ", ".join(have) or "none of " + "/".join(CPU_FLAGS)
        if lack:
            flags += f"; no {', no '.join(lack)}"
        return f"{self.cpu} ({flags}), {self.cores} cores, {self.os}, Python {self.python}"


def load_average() -> tuple[float, float, float]:
    """The 1/5/15-minute load average (zeros where the OS has none)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def format_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def cpu_model_and_flags(cpuinfo: str | None = None) -> tuple[str, dict[str, bool]]:
    """The CPU's model name and which of CPU_FLAGS it has, from /proc/cpuinfo (or the text given)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    model: str | None = None
    flags: set[str] | None = None
    for line in cpuinfo.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and model is None:
            model = value
        elif key in ("flags", "Features") and flags is None:
            flags = set(value.split())
        if model is not None and flags is not None:
            break
    model = model or platform.processor() or platform.machine() or "unknown"
    flags = flags or set()
    return model, {f: f in flags for f in CPU_FLAGS}


def machine_info() -> MachineInfo:
    """CPU, flags, cores, load average now, OS and Python of this machine."""
    cpu, flags = cpu_model_and_flags()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return MachineInfo(
        cpu=cpu,
        flags=flags,
        cores=cores,
        cpu_count=os.cpu_count() or cores,
        load_average=load_average(),
        python=platform.python_version(),
        os=platform.platform(),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of a process's main thread.

    The edge embeds and searches on its event-loop thread, so the share of runnable time it got
    a CPU converts wall-clock timings measured inside it into CPU time on a busy machine.
    """
    on_cpu, waiting, *_ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed version of each distribution ('-' where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    return out
