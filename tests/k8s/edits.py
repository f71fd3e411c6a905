"""Where a broken-manifest test reaches into the rendered objects to break them."""

from typing import Any

Manifest = dict[str, Any]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The object of this kind and name."""
    return next(obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name)


def pod_spec(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """The pod spec of a workload's template."""
    return find(objects, kind, name)["spec"]["template"]["spec"]


def container(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """A workload's first container."""
    return pod_spec(objects, kind, name)["containers"][0]


def init_container(objects: list[Manifest], kind: str, name: str) -> Manifest:
    """A workload's first init container."""
    return pod_spec(objects, kind, name)["initContainers"][0]
