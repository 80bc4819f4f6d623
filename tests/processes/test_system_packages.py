"""bin/system-packages: installs what system-packages.txt lists and the machine lacks, and nothing else.

The machine is simulated: PATH holds only a fake `dpkg-query` that reports every package
installed except those named in FAKE_MISSING, and fakes of node, npm, apt-get and sudo that
record how they were called. The script uses nothing else before it installs.
"""

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.processes import PROJECT_DIR

SCRIPT = PROJECT_DIR / "bin" / "system-packages"
BASH = shutil.which("bash") or "/bin/bash"

FAKE_DPKG_QUERY = """#!/bin/sh
# dpkg-query -W -f='${Package} ${db:Status-Status}\\n' PACKAGE...
for arg in "$@"; do
  case "$arg" in -*) continue ;; esac
  case " $FAKE_MISSING " in *" $arg "*) echo "dpkg-query: no packages found matching $arg" >&2 ;;
    *) echo "$arg installed" ;; esac
done
"""
RECORDER = """#!/bin/sh
echo "%s $*" >> "$FAKE_LOG"
"""


def listed_packages() -> list[str]:
    lines = (PROJECT_DIR / "system-packages.txt").read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


class FakeMachine:
    """A folder of fake commands that is the whole PATH of the script."""

    def __init__(self, missing: str = "", node_version: str | None = "v20.20.2", sudo: bool = False):
        # Readable by every user: some tests run the script as `nobody`.
        self.dir = Path(tempfile.mkdtemp(prefix="fake-machine-"))
        self.dir.chmod(0o755)
        self.bin = self.dir / "bin"
        self.bin.mkdir()
        self.log = self.dir / "calls.log"
        self.log.touch()
        self.log.chmod(0o666)
        self.missing = missing
        self._write("dpkg-query", FAKE_DPKG_QUERY)
        self._write("apt-get", RECORDER % "apt-get")
        (self.bin / "env").symlink_to(shutil.which("env"))  # the script runs `env DEBIAN_FRONTEND=... apt-get`
        if sudo:
            self._write("sudo", RECORDER % "sudo")
        if node_version:
            self._write("node", f"#!/bin/sh\necho {node_version}\n")
            self._write("npm", "#!/bin/sh\necho 11.0.0\n")

    def _write(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)

    def run(self, *args: str, as_nobody: bool = False) -> subprocess.CompletedProcess:
        env = {"PATH": str(self.bin), "FAKE_MISSING": self.missing, "FAKE_LOG": str(self.log)}
        command = [BASH, str(SCRIPT), *args]
        if as_nobody:
            command = ["runuser", "-u", "nobody", "--", "env", *(f"{k}={v}" for k, v in env.items()), *command]
            env = dict(os.environ)
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def machine():
    made = []

    def make(**kwargs) -> FakeMachine:
        made.append(FakeMachine(**kwargs))
        return made[-1]

    yield make
    for fake in made:
        fake.remove()


def not_root_runner():
    """How to run the script as a user who is not root: as this user, or as nobody when root."""
    if os.geteuid() != 0:
        return {}
    if not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot run the script as another user")
    if not os.access(SCRIPT, os.R_OK) or (SCRIPT.stat().st_mode & stat.S_IROTH) == 0:
        pytest.skip("the checkout is not readable by nobody")
    return {"as_nobody": True}


def test_the_list_names_weasyprints_libraries_the_browser_the_bench_tools_and_node():
    packages = listed_packages()
    for package in ["libpango-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core", "poppler-utils", "chromium"]:
        assert package in packages
    for package in ["wrk", "postgresql-client", "nodejs", "npm"]:
        assert package in packages


def test_a_dry_run_names_what_the_machine_lacks_and_the_apt_command(machine):
    fake = machine(missing="chromium wrk")

    result = fake.run("--dry-run")

    assert result.returncode == 0, result.stderr
    assert "would install: chromium wrk" in result.stdout
    if os.geteuid() == 0:
        assert "would run: apt-get update && apt-get install -y --no-install-recommends chromium wrk" in result.stdout
    assert fake.calls() == []  # it changed nothing


def test_a_dry_run_on_a_ready_machine_has_nothing_to_install(machine):
    fake = machine()

    result = fake.run("--dry-run")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "nothing to install"
    assert fake.calls() == []


def test_a_run_on_a_ready_machine_prints_nothing_and_runs_no_apt(machine):
    fake = machine()

    started = time.monotonic()
    result = fake.run()
    elapsed = time.monotonic() - started

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert fake.calls() == []
    assert elapsed < 1.0, f"a run with nothing to do took {elapsed:.2f}s"


def test_as_root_it_updates_then_installs_only_what_is_missing(machine):
    if os.geteuid() != 0:
        pytest.skip("the root path needs root")
    fake = machine(missing="poppler-utils")

    result = fake.run()

    assert result.returncode == 0, result.stderr
    assert fake.calls() == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends poppler-utils",
    ]


def test_with_sudo_it_asks_sudo(machine):
    runner = not_root_runner()
    fake = machine(missing="wrk", sudo=True)

    result = fake.run(**runner)

    assert result.returncode == 0, result.stderr
    assert fake.calls() == [
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk",
    ]


def test_without_root_or_sudo_it_stops_with_the_command_to_run(machine):
    runner = not_root_runner()
    fake = machine(missing="chromium poppler-utils")  # named in the order of the list

    result = fake.run(**runner)

    assert result.returncode == 1
    assert "apt-get update && apt-get install -y --no-install-recommends poppler-utils chromium" in result.stderr
    assert fake.calls() == []


def test_node_and_npm_from_elsewhere_count_as_installed(machine):
    fake = machine(missing="nodejs npm")  # e.g. NodeSource's node, or nvm's: not Debian's packages

    assert fake.run("--dry-run").stdout.strip() == "nothing to install"


def test_without_node_it_wants_debians_nodejs_and_npm(machine):
    fake = machine(missing="nodejs npm", node_version=None)

    assert "would install: nodejs npm" in fake.run("--dry-run").stdout


def test_a_node_too_old_for_vite_is_named(machine):
    fake = machine(node_version="v18.20.4")

    result = fake.run()

    assert result.returncode == 1
    assert "Node.js v18.20.4 is too old" in result.stderr


def test_on_this_machine_a_dry_run_answers_well_under_a_second():
    if not shutil.which("dpkg-query"):
        pytest.skip("not a Debian machine")
    started = time.monotonic()
    result = subprocess.run([BASH, str(SCRIPT), "--dry-run"], capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert elapsed < 1.0, f"took {elapsed:.2f}s"


def test_a_node_too_old_stops_in_one_line_with_the_fix_before_anything_is_installed(machine):
    fake = machine(missing="chromium wrk", node_version="v18.20.4")

    result = fake.run()

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Vite needs 20.19 or newer" in result.stderr and "Install Node.js 20 or 22" in result.stderr
    assert fake.calls() == []  # no apt-get ran: nothing half-installed


def test_without_node_apts_nodejs_too_old_for_vite_stops_before_installing(machine):
    fake = machine(missing="nodejs npm chromium", node_version=None)
    policy = "nodejs:\n  Installed: (none)\n  Candidate: 18.20.4+dfsg-1~deb12u2\n"
    fake._write("apt-cache", f"#!/bin/sh\nprintf '{policy}'\n")

    result = fake.run()

    assert result.returncode == 1
    assert "apt's Node.js 18.20.4+dfsg-1~deb12u2 is too old" in result.stderr
    assert fake.calls() == []


def test_without_node_apts_recent_nodejs_is_installed(machine):
    if os.geteuid() != 0:
        pytest.skip("the root path needs root")
    fake = machine(missing="nodejs npm", node_version=None)
    fake._write("apt-cache", "#!/bin/sh\necho '  Candidate: 20.20.2-1nodesource1'\n")

    result = fake.run()

    assert result.returncode == 0, result.stderr
    assert fake.calls()[-1] == "apt-get install -y -qq --no-install-recommends nodejs npm"
