"""The overlays, rendered once per session, for the tests of k8s/check.py and k8s/checks/."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# k8s/ is a folder of manifests with a script in it, not a package: `python k8s/check.py`
# imports checks/ from beside itself, and these tests import both the same way.
sys.path.insert(0, str(ROOT / "k8s"))

from checks.manifests import Manifest, render  # noqa: E402 (needs the path above)


@pytest.fixture(scope="session")
def local() -> list[Manifest]:
    """The local overlay as kustomize renders it (k8s/overlays/local/secrets.env must exist: make k8s-secrets)."""
    return render(ROOT / "k8s" / "overlays" / "local")


@pytest.fixture(scope="session")
def production() -> list[Manifest]:
    """The production overlay as kustomize renders it."""
    return render(ROOT / "k8s" / "overlays" / "production")
