"""What a run records about where it ran: the machine and the versions of everything measured."""

import os
import platform
import re
import subprocess
from pathlib import Path

from bench.stack import REDIS_BASE, psql


def read_tool_version(cmd: list[str]) -> str:
    """The first line a tool prints about its version, or "not installed"."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        return "not installed"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""


def describe_machine() -> dict:
    """Cores, CPU model, memory, kernel and load of the machine the run measures."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    total_kib = int(re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M).group(1))
    return {
        "cores": os.cpu_count(),
        "cpu_model": model.group(1) if model else platform.processor(),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_average": os.getloadavg(),
    }


def read_versions() -> dict:
    """The versions of Python, the packages, the servers and the load tools under test."""
    from importlib.metadata import version

    import redis

    return {
        "python": platform.python_version(),
        **{
            name: version(name)
            for name in ("Django", "djangorestframework", "django-q2", "gunicorn", "weasyprint", "psycopg")
        },
        "postgresql": psql("SHOW server_version"),
        "redis": redis.from_url(REDIS_BASE).info("server")["redis_version"],
        "wrk": read_tool_version(["wrk", "-v"]).split(" [")[0],
        "pgbench": read_tool_version(["pgbench", "--version"]),
    }
