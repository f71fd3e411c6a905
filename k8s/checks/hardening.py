"""Each workload's hardening: labels, requests and limits, probes, a locked-down securityContext."""

from .manifests import Manifest, containers_of, name_of, pod_templates

# Selectors, policies and `kubectl get -l` find chatscale's pods by these.
REQUIRED_POD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of")


def check_hardening(objects: list[Manifest]) -> list[str]:
    """Every workload: labels, requests and limits, probes, a locked-down securityContext."""
    problems = []
    for workload, template in pod_templates(objects):
        where = name_of(workload)
        labels = template["metadata"].get("labels", {})
        for label in REQUIRED_POD_LABELS:
            if label not in labels:
                problems.append(f"{where}: pods lack the label {label}")
        spec = template["spec"]
        pod_security = spec.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pods may run as root (runAsNonRoot is not true)")
        if pod_security.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: no seccomp profile")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: the service account token is mounted")
        init_names = {container["name"] for container in spec.get("initContainers", [])}
        for container in containers_of(template):
            name = f"{where} {container['name']}"
            if ":" not in container["image"].rsplit("/", 1)[-1] and "@" not in container["image"]:
                problems.append(f"{name}: image {container['image']} has no tag (did the overlay's images: apply?)")
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(bound, {}):
                        problems.append(f"{name}: no {resource} {bound[:-1]}")
            if workload["kind"] != "Job" and container["name"] not in init_names:
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in container:
                        problems.append(f"{name}: no {probe}")
            security = container.get("securityContext", {})
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: the root filesystem is writable")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: capabilities are not all dropped")
            if security.get("privileged"):
                problems.append(f"{name}: privileged")
    return problems
