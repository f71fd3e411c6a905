"""checkov's Kubernetes checks on the rendered objects, run from its own virtualenv (.venv-k8s)."""

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import yaml

from .manifests import Manifest

ROOT = Path(__file__).resolve().parents[2]


def checkov_binary() -> str:
    """The checkov of `make k8s-tools`, else one on PATH; exits with the command to run when there is none."""
    for candidate in (ROOT / ".venv-k8s" / "bin" / "checkov", shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit("checkov is missing; run: make k8s-tools")


def check_with_checkov(objects: list[Manifest], skip: Iterable[str]) -> list[str]:
    """checkov's Kubernetes checks, less those in `skip`; one line per failed check and object."""
    with tempfile.TemporaryDirectory() as folder:
        manifest = Path(folder) / "rendered.yaml"
        manifest.write_text(yaml.safe_dump_all(objects))
        result = subprocess.run(
            [
                checkov_binary(),
                "--quiet",
                "--compact",
                "--output",
                "json",
                "--framework",
                "kubernetes",
                "--skip-check",
                ",".join(skip),
                "--file",
                str(manifest),
            ],
            capture_output=True,
            text=True,
        )
    # checkov exits 1 for failed checks (with a report) and for its own crashes (without one).
    if result.returncode not in (0, 1) or (result.returncode == 1 and not result.stdout.strip()):
        return [f"checkov failed to run (exit {result.returncode}):\n{result.stderr[-2000:]}"]
    if not result.stdout.strip():
        return []
    report = json.loads(result.stdout)
    parts = report if isinstance(report, list) else [report]
    return [
        f"checkov {failed['check_id']} ({failed['check_name']}): {failed['resource']}; "
        "fix it, or skip the check in CHECKOV_SKIPS with the reason"
        for part in parts
        for failed in part.get("results", {}).get("failed_checks", [])
    ]
