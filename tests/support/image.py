"""The shop's container image, built from this checkout and run with podman on the host's network.

`build_images()` runs `bin/image` (the same command as `make image`: a cached build takes
seconds) and builds deploy/nginx's image beside it; `Container` is one `podman run -d` of
them, stopped and removed when the test ends. The containers share the host's network
(`--network host`), so they reach the test's private PostgreSQL, Redis, S3, SMTP and Stripe
servers on loopback as the shop's processes on a host would.
"""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import PROJECT_DIR

IMAGE = "order-backoffice:test"
NGINX_IMAGE = "order-backoffice-nginx:test"
BUILD_TIMEOUT = 1800


def podman() -> str:
    found = shutil.which("podman")
    if not found:
        pytest.fail("podman is not installed: bin/system-packages installs it (system-packages.txt)")
    return found


def build_images() -> dict[str, float]:
    """Build the shop's image and nginx's from this checkout; returns the seconds each took."""
    took = {}
    started = time.monotonic()
    built = subprocess.run(
        ["bin/image"], cwd=PROJECT_DIR, env={**os.environ, "IMAGE": IMAGE}, capture_output=True, text=True,
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    assert built.returncode == 0, f"bin/image failed:\n{built.stdout[-6000:]}\n{built.stderr[-6000:]}"
    took["shop"] = time.monotonic() - started
    started = time.monotonic()
    built = subprocess.run(
        [podman(), "build", "--pull=never", "--network", "host", "-q", "-t", NGINX_IMAGE, "deploy/nginx"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    assert built.returncode == 0, f"nginx's image failed:\n{built.stderr[-6000:]}"
    took["nginx"] = time.monotonic() - started
    return took


def image_size_bytes(image: str = IMAGE) -> int:
    inspected = subprocess.run(
        [podman(), "image", "inspect", image, "--format", "{{.Size}}"], capture_output=True, text=True, check=True
    )
    return int(inspected.stdout.strip())


class Container:
    """One detached container of an image, on the host's network."""

    def __init__(self, name: str, image: str, args: list[str], env: dict[str, str], mounts: list[str] = ()):
        self.name = f"shop-test-{name}-{uuid.uuid4().hex[:8]}"
        self.image = image
        self.args = args
        self.env = env
        self.mounts = list(mounts)
        self.exit_code: int | None = None

    def command(self, *, detach: bool) -> list[str]:
        options = [podman(), "run", "--network", "host", "--name", self.name]
        options += ["-d"] if detach else ["--rm"]
        for key, value in self.env.items():
            options += ["-e", f"{key}={value}"]
        for mount in self.mounts:
            options += ["-v", mount]
        return [*options, self.image, *self.args]

    def start(self) -> "Container":
        subprocess.run(self.command(detach=True), check=True, capture_output=True, text=True, timeout=120)
        return self

    def run_to_end(self, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run it in the foreground to its end (a one-off: migrate, import_stock)."""
        return subprocess.run(self.command(detach=False), capture_output=True, text=True, timeout=timeout)

    def start_in_background(self) -> subprocess.Popen:
        """A one-off started without waiting for it (two migrates at once)."""
        return subprocess.Popen(self.command(detach=False), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        """A command inside the running container (a healthcheck)."""
        return subprocess.run([podman(), "exec", self.name, *command], capture_output=True, text=True, timeout=120)

    def users(self) -> set[str]:
        """The users the container's processes run as (podman top)."""
        top = subprocess.run(
            [podman(), "top", self.name, "user"], capture_output=True, text=True, check=True, timeout=30
        )
        return {line.strip() for line in top.stdout.splitlines()[1:] if line.strip()}

    def running(self) -> bool:
        state = subprocess.run(
            [podman(), "inspect", self.name, "--format", "{{.State.Running}}"], capture_output=True, text=True
        )
        return state.stdout.strip() == "true"

    def stop(self, timeout: int = 10) -> float:
        """SIGTERM, SIGKILL after `timeout` s (podman stop); returns the seconds it took to stop."""
        started = time.monotonic()
        subprocess.run([podman(), "stop", "-t", str(timeout), self.name], capture_output=True, timeout=timeout + 30)
        took = time.monotonic() - started
        inspected = subprocess.run(
            [podman(), "inspect", self.name, "--format", "{{.State.ExitCode}}"], capture_output=True, text=True
        )
        self.exit_code = int(inspected.stdout.strip() or -1)
        return took

    def logs(self) -> str:
        logged = subprocess.run([podman(), "logs", self.name], capture_output=True, text=True)
        return f"==== {self.name}\n{logged.stdout[-4000:]}{logged.stderr[-4000:]}"

    def remove(self) -> None:
        subprocess.run([podman(), "rm", "-f", "-v", "-t", "0", self.name], capture_output=True, timeout=60)


def secret_files(directory: Path, secrets: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Each secret written to a file, mounted read-only at /run/secrets/<name>: the NAME_FILE
    variables that point at them, and the mounts."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    environ, mounts = {}, []
    for name, value in secrets.items():
        path = directory / name.lower()
        path.write_text(value + "\n")
        path.chmod(0o644)  # the image's user (shop) reads it
        environ[f"{name}_FILE"] = f"/run/secrets/{name.lower()}"
        mounts.append(f"{path}:/run/secrets/{name.lower()}:ro")
    return environ, mounts


class ComposeStack:
    """compose.yaml brought up by podman-compose (requirements-dev.txt) under a project name of
    its own, with the shop's and nginx's images built by `build_images()`; `down -v` removes
    its containers and volumes.

    Debian 12's podman 4.3 has no health conditions (podman-compose skips them, saying so) and
    cannot start a container whose `--requires` chain holds an exited one-off ("not found in
    input list"), so the stack comes up with `up -d --no-deps`: every service in order, none
    tied to another. The entrypoint makes `web`, `backoffice` and `cluster` wait for the
    database and its migrations, as it does for any orchestrator that does not wait on health.
    """

    def __init__(self, port: int):
        self.project = f"shoptest{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "SHOP_PORT": str(port), "SHOP_IMAGE": IMAGE, "NGINX_IMAGE": NGINX_IMAGE}
        self.url = f"http://127.0.0.1:{port}"

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        tool = Path(sys.executable).parent / "podman-compose"
        # Images compose builds itself (PostgreSQL's, Redis's) are built as bin/image builds.
        command = [str(tool), "-p", self.project, "--podman-build-args=--network=host --pull=never", *args]
        return subprocess.run(command, cwd=PROJECT_DIR, env=self.env, capture_output=True, text=True, timeout=timeout)

    def up(self) -> subprocess.CompletedProcess:
        return self.compose("up", "-d", "--no-deps", timeout=BUILD_TIMEOUT)

    def container_names(self) -> list[str]:
        label = f"label=io.podman.compose.project={self.project}"
        command = [podman(), "ps", "-a", "--filter", label, "--format", "{{.Names}}"]
        return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout.split()

    def logs(self) -> str:
        logs = []
        for name in self.container_names():
            logged = subprocess.run([podman(), "logs", name], capture_output=True, text=True, timeout=60)
            logs.append(f"==== {name}\n{logged.stdout[-3000:]}{logged.stderr[-3000:]}")
        return "\n".join(logs)

    def down(self) -> None:
        """Stop and remove the stack, its network and every volume its containers used.

        podman-compose's `down -v` removes the named volumes, not the anonymous ones a container
        made for an image's VOLUME it does not mount (the shop image's /var/lib/shop in
        `secrets`): those are noted first and removed after it."""
        volumes = set()
        each_volume = '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}'
        for name in self.container_names():
            mounts = subprocess.run(
                [podman(), "inspect", name, "--format", each_volume], capture_output=True, text=True, timeout=60
            )
            volumes.update(mounts.stdout.split())
        self.compose("down", "-v", "-t", "10", timeout=300)
        for volume in volumes:  # the named ones are gone already: podman says so, harmlessly
            subprocess.run([podman(), "volume", "rm", "-f", volume], capture_output=True, timeout=60)
