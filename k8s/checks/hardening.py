"""The parts of each workload's hardening that checkov does not check on these manifests.

Requests and limits, probes, seccomp and the container securityContext (privilege
escalation, read-only root filesystem, capabilities, privileged) are checkov's, for init
containers and Jobs too: CHECKOV_ENFORCES in k8s/check.py lists the checkov ids relied upon,
and tests/k8s/test_checkov.py breaks each of those things and expects its id.
"""

from .manifests import Manifest, containers_of, name_of, pod_templates

# Selectors, policies and `kubectl get -l` find chatscale's pods by these.
REQUIRED_POD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of")


def check_hardening(objects: list[Manifest]) -> list[str]:
    """Every workload: pod labels, non-root pods, no service account token, images with a tag."""
    problems = []
    for workload, template in pod_templates(objects):
        where = name_of(workload)
        labels = template["metadata"].get("labels", {})
        for label in REQUIRED_POD_LABELS:
            if label not in labels:
                problems.append(
                    f"{where}: pods lack the label {label}; add it to spec.template.metadata.labels "
                    "(or to the kustomization's labels: with includeTemplates: true)"
                )
        spec = template["spec"]
        # checkov's CKV_K8S_23 is content with a non-zero runAsUser alone, but the production
        # namespace enforces the restricted Pod Security Standard, which rejects such pods.
        if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
            problems.append(
                f"{where}: pods may run as root; set spec.template.spec.securityContext.runAsNonRoot: true "
                "(the restricted Pod Security Standard of the production namespace requires it)"
            )
        # checkov's CKV_K8S_38 checks the same, but it is in CHECKOV_SKIPS.
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(
                f"{where}: pods mount the service account token; set automountServiceAccountToken: false "
                "(no chatscale pod talks to the Kubernetes API)"
            )
        for container in containers_of(template):
            image = container["image"]
            # A registry host may have a port ("registry:5000/app"), so look for the tag after the last slash.
            if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
                problems.append(
                    f"{where}: container {container['name']}'s image {image} has no tag; name the image in the "
                    "overlay's images: block with a newTag (did that block apply?)"
                )
    return problems
