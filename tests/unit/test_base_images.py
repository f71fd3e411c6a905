"""Where the compose test gets its base images (tests/containers/base_images.py): engine already has, pull, or stand-in.

A fake engine answers the docker commands, so nothing here needs Docker, root or debootstrap.
"""

import subprocess

import pytest

from tests.containers import base_images
from tests.containers.base_images import BASE_IMAGES, MINBASE_TAG, STANDIN, provide_base_images, remove_standins


class FakeEngine:
    """Images by tag with their test label, and a registry that has `pullable` (or times out)."""

    def __init__(self, images=None, pullable=(), owns_engine=False, registry_hangs=False):
        self.images = dict(images or {})
        self.pullable = set(pullable)
        self.owns_engine = owns_engine
        self.registry_hangs = registry_hangs
        self.commands = []

    def has_image(self, tag):
        return tag in self.images

    def image_label(self, tag):
        return self.images.get(tag)

    def docker(self, *args, check=True, capture=False, timeout=900):
        self.commands.append(args)
        if args[0] == "pull":
            if self.registry_hangs:
                raise subprocess.TimeoutExpired(["docker", *args], timeout)
            ok = args[-1] in self.pullable
            if ok:
                self.images[args[-1]] = None
            return subprocess.CompletedProcess(args, 0 if ok else 1, "", "" if ok else "Error: no such host")
        if args[:2] == ("image", "rm"):
            del self.images[args[2]]
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def built(monkeypatch):
    """The tags stand-ins were built for, instead of building them."""
    tags = []
    monkeypatch.setattr(base_images, "_build_standins", lambda engine, cache, needed: tags.extend(needed))
    monkeypatch.setattr(base_images.os, "geteuid", lambda: 0)
    monkeypatch.setattr(base_images.shutil, "which", lambda *args, **kwargs: "/usr/sbin/debootstrap")
    return tags


def test_a_private_engine_always_gets_every_standin(built):
    engine = FakeEngine(owns_engine=True, pullable=BASE_IMAGES)
    assert provide_base_images(engine, "cache") == list(BASE_IMAGES) == built
    assert not [command for command in engine.commands if command[0] == "pull"]


def test_an_existing_engine_uses_what_it_has_and_pulls_the_rest(built):
    engine = FakeEngine(images={"python:3.11-slim-bookworm": None}, pullable=BASE_IMAGES)
    assert provide_base_images(engine, "cache") == [] == built
    pulled = [command[-1] for command in engine.commands if command[0] == "pull"]
    assert pulled == ["redis:7.4-bookworm", "postgres:15-bookworm", "nginx:1.29.3"]


def test_only_what_cannot_be_pulled_gets_a_standin(built):
    engine = FakeEngine(pullable={"python:3.11-slim-bookworm", "redis:7.4-bookworm"})
    assert provide_base_images(engine, "cache") == ["postgres:15-bookworm", "nginx:1.29.3"] == built


def test_a_standin_left_by_an_aborted_run_is_not_taken_for_the_real_image(built):
    engine = FakeEngine(images=dict.fromkeys(BASE_IMAGES) | {"redis:7.4-bookworm": STANDIN})
    assert provide_base_images(engine, "cache") == ["redis:7.4-bookworm"]
    assert ("pull", "--quiet", "redis:7.4-bookworm") in engine.commands


def test_a_registry_that_does_not_answer_means_standins(built):
    engine = FakeEngine(registry_hangs=True)
    assert provide_base_images(engine, "cache") == list(BASE_IMAGES)


def test_standins_without_root_are_refused_with_what_to_do(built, monkeypatch):
    monkeypatch.setattr(base_images.os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match=r"no nginx:1\.29\.3 and cannot pull them.*docker pull"):
        provide_base_images(FakeEngine(pullable=set(BASE_IMAGES) - {"nginx:1.29.3"}), "cache")
    assert built == []


def test_only_standins_are_removed_never_a_real_image_under_the_same_name():
    engine = FakeEngine(
        images={
            "python:3.11-slim-bookworm": STANDIN,
            "redis:7.4-bookworm": None,
            MINBASE_TAG: STANDIN,
            "user/own:1": None,
        }
    )
    remove_standins(engine, ["python:3.11-slim-bookworm", "redis:7.4-bookworm"])
    assert set(engine.images) == {"redis:7.4-bookworm", "user/own:1"}
    removed = [command[2] for command in engine.commands if command[:2] == ("image", "rm")]
    assert removed == ["python:3.11-slim-bookworm", MINBASE_TAG]
