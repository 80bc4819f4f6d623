"""App hosts of their own on this machine: Linux network namespaces on one bridge.

Scaling out means app hosts that share nothing but the database, the broker and the receipt
storage. Here each host is a network namespace with one veth into a bridge in the root
namespace; the bridge carries the address the private PostgreSQL and Redis listen on.
Cutting a host's veth is what a dead switch port does to a real host: its processes keep
running, every packet to or from it is lost until the link comes back.

    with HostNetwork(hosts_wanted=2) as network:
        network.bridge_address        # 10.77.N.1, where the shared servers listen
        network.hosts[0].address      # 10.77.N.11, the first host's own address
        network.cut(network.hosts[0]) # ... network.restore(network.hosts[0])

N is chosen per run (from the pid, skipping subnets in use) and the bridge is labelled with
the owning pid, so two runs never collide and the leftovers of a crashed run (its owner no
longer alive) are deleted before a new network is built. Needs root (CAP_NET_ADMIN).

`start_app_host` runs a gunicorn and a `manage.py qcluster` inside one namespace, pinned to
one core with taskset. The test (tests/faults/test_two_hosts.py) and the benchmark (bench's
two-host scenario) both build their hosts here.
"""

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.processes import START_TIMEOUT, Process
from tests.support.waiting import wait_until

SUBNET = "10.77"
BRIDGE = "oh{n}b"  # interface names: at most 15 characters
VETH = "oh{n}v{i}"
NAMESPACE = "orders-hosts-{n}-{i}"
OWNER_LABEL = "orders-hosts pid "
APP_PORT = 8000  # each namespace has its ports to itself: every host listens on the same one
PYTHON = sys.executable


class NetnsUnavailable(RuntimeError):
    """This machine or user cannot build network namespaces (not root, no `ip netns`)."""


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def netns_unavailable_reason() -> str:
    """Why network namespaces cannot be built here, or "" when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"orders-hosts-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (RuntimeError, FileNotFoundError) as error:
        return f"`ip netns add` is not permitted here: {error}"
    _ip("netns", "delete", probe, check=False)
    return ""


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _bridges() -> dict[int, int | None]:
    """Our bridges by subnet number, each with the pid of the run that built it (None: unlabelled)."""
    found: dict[int, int | None] = {}
    for line in _ip("-o", "-d", "link", "show", "type", "bridge").splitlines():
        if match := re.match(r"\d+: oh(\d+)b[:@]", line):
            owner = re.search(re.escape(OWNER_LABEL) + r"(\d+)", line)
            found[int(match.group(1))] = int(owner.group(1)) if owner else None
    return found


def _delete_network(n: int) -> None:
    """Delete subnet `n`'s namespaces (their veth ends go with them), veths and bridge."""
    for namespace in _namespaces():
        if re.fullmatch(NAMESPACE.format(n=n, i=r"\d+"), namespace):
            _ip("netns", "delete", namespace, check=False)
    for line in _ip("-o", "link", "show").splitlines():
        if match := re.match(r"\d+: (" + VETH.format(n=n, i=r"\d+") + r")[:@]", line):
            _ip("link", "delete", match.group(1), check=False)
    _ip("link", "delete", BRIDGE.format(n=n), check=False)


def sweep_leftovers() -> list[int]:
    """Delete the networks of runs whose process is gone (a crashed or killed run); their numbers."""
    bridges = _bridges()
    dead = {n for n, owner in bridges.items() if owner is None or not _alive(owner)}
    # Namespaces without their bridge: a run that died while building or tearing down.
    for namespace in _namespaces():
        if (match := re.fullmatch(NAMESPACE.format(n=r"(\d+)", i=r"\d+"), namespace)) and int(
            match.group(1)
        ) not in bridges:
            dead.add(int(match.group(1)))
    for n in sorted(dead):
        _delete_network(n)
    return sorted(dead)


@dataclass
class Host:
    """One app host: a namespace, its address and the core its processes are pinned to."""

    index: int
    namespace: str
    address: str
    veth: str  # the root namespace's end, on the bridge: down cuts the host off
    core: int

    def command(self, args: list[str]) -> list[str]:
        """`args` run inside this host's namespace, pinned to its core."""
        return ["ip", "netns", "exec", self.namespace, "taskset", "-c", str(self.core), *args]


@dataclass
class HostNetwork:
    """A bridge with an address and `hosts` namespaces on it; deleted on exit, whatever happened."""

    hosts_wanted: int = 2
    n: int = 0
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return BRIDGE.format(n=self.n)

    @property
    def bridge_address(self) -> str:
        return f"{SUBNET}.{self.n}.1"

    def __enter__(self) -> "HostNetwork":
        if reason := netns_unavailable_reason():
            raise NetnsUnavailable(reason)
        sweep_leftovers()
        self._claim_subnet()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _claim_subnet(self) -> None:
        # Creating the bridge is the claim: of two runs that picked one number, the second's
        # `ip link add` fails and it moves on to the next number.
        in_use = _ip("-o", "addr", "show")
        start = os.getpid() % 200 + 20
        for offset in range(200):
            n = (start + offset) % 200 + 20
            if f" {SUBNET}.{n}." in in_use:
                continue
            done = subprocess.run(["ip", "link", "add", BRIDGE.format(n=n), "type", "bridge"], capture_output=True)
            if done.returncode == 0:
                self.n = n
                _ip("link", "set", "dev", self.bridge, "alias", f"{OWNER_LABEL}{os.getpid()}")
                return
        raise RuntimeError("no free 10.77.N.0/24 subnet for the app hosts' bridge")

    def _build(self) -> None:
        _ip("addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        cores = os.cpu_count() or 1
        for i in range(self.hosts_wanted):
            host = Host(
                index=i,
                namespace=NAMESPACE.format(n=self.n, i=i),
                address=f"{SUBNET}.{self.n}.{11 + i}",
                veth=VETH.format(n=self.n, i=i),
                core=i % cores,
            )
            inside = f"{host.veth}p"
            _ip("netns", "add", host.namespace)
            _ip("link", "add", host.veth, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", host.namespace)
            _ip("link", "set", host.veth, "master", self.bridge)
            _ip("link", "set", host.veth, "up")
            _ip("-n", host.namespace, "link", "set", "lo", "up")
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", inside)
            _ip("-n", host.namespace, "link", "set", inside, "up")
            self.hosts.append(host)

    def cut(self, host: Host) -> None:
        """Take the host's link down: every packet to or from it is lost until `restore`."""
        _ip("link", "set", host.veth, "down")

    def restore(self, host: Host) -> None:
        _ip("link", "set", host.veth, "up")

    def close(self) -> None:
        if self.n:
            _delete_network(self.n)


@dataclass
class AppHost:
    """A host's gunicorn and qcluster, started inside its namespace."""

    host: Host
    web: Process
    cluster: Process
    url: str

    def stop(self) -> None:
        self.cluster.stop()
        self.web.stop()

    def processes(self) -> list[Process]:
        return [self.web, self.cluster]


def start_app_host(
    host: Host,
    env: dict[str, str],
    log_dir: Path,
    *,
    web_workers: int = 1,
    threads: int = 8,
    cluster_workers: int = 2,
) -> AppHost:
    """Start gunicorn on the host's address and a qcluster, both in its namespace on its core,
    and wait until the web server answers and the cluster runs. Stops what it started if
    either fails to come up."""
    url = f"http://{host.address}:{APP_PORT}"
    env = {
        **env,
        "DJANGO_ALLOWED_HOSTS": f"{host.address},127.0.0.1,localhost",
        "PUBLIC_BASE_URL": url,
        "Q_WORKERS": str(cluster_workers),
    }
    name = f"host{host.index}"
    web = Process(
        f"{name}-web",
        host.command(
            [
                PYTHON, "-m", "gunicorn", "config.wsgi",
                "--bind", f"{host.address}:{APP_PORT}",
                "--workers", str(web_workers), "--threads", str(threads),
                "--timeout", "60", "--no-control-socket",
            ]
        ),
        env,
        log_dir / f"{name}-web.log",
    )  # fmt: skip
    cluster = None
    try:
        cluster = Process(
            f"{name}-qcluster", host.command([PYTHON, "manage.py", "qcluster"]), env, log_dir / f"{name}-qcluster.log"
        )
        wait_until(
            lambda: _answers(url, web),
            timeout=START_TIMEOUT,
            message=lambda: f"{name}'s web server not answering on {url}:\n{web.log()[-4000:]}",
        )
        cluster.wait_for_log(r"Q Cluster .+ running")
    except BaseException:
        for process in (cluster, web):
            if process is not None:
                process.stop()
        raise
    return AppHost(host=host, web=web, cluster=cluster, url=url)


def _answers(url: str, web: Process) -> bool:
    if web.popen.poll() is not None:
        raise AssertionError(f"{web.name} exited with {web.popen.returncode}:\n{web.log()[-4000:]}")
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{url}/api/products/", timeout=5).status_code == 200
    return False
