"""Offline checks of the Kubernetes manifests: no API server can run where this is tested.

    python k8s/check.py                      every overlay, every check
    python k8s/check.py --overlay local      one overlay

For each overlay: render it with kustomize (kubectl kustomize); validate every object
strictly against the schemas of KUBERNETES_VERSION (an unknown or removed apiVersion or
kind is an error); cross-check references between objects; check what checkov does not
of each workload's hardening (pod labels, runAsNonRoot, no service account token, tagged
images); compare the nginx ConfigMap with the files in nginx/ and run `nginx -t` on the
assembled configuration; run checkov's Kubernetes checks, which enforce the rest of the
hardening (CHECKOV_ENFORCES; skipped checks and their reasons are in CHECKOV_SKIPS).
Exits 1 with one line per problem when anything fails. The checks live in k8s/checks/.
"""

import argparse
import sys
from pathlib import Path

from checks.checkov import check_with_checkov
from checks.hardening import check_hardening
from checks.manifests import Manifest, ObjectKey, render
from checks.nginx import check_nginx_config, check_nginx_syntax
from checks.references import check_references
from checks.schemas import check_schemas

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ROOT / "k8s" / "overlays"
KUBERNETES_VERSION = "1.34.0"
# Objects an overlay expects to exist in the cluster without creating them itself.
EXTERNAL_OBJECTS: dict[str, frozenset[ObjectKey]] = {
    "local": frozenset(),
    "production": frozenset({("Secret", "chatscale-secrets"), ("Secret", "chatscale-tls")}),
}
# checkov checks that do not fit, each with its reason.
CHECKOV_SKIPS = {
    "CKV_K8S_14": "images are pinned by tag in kustomization.yaml; a digest is set at release time",
    "CKV_K8S_43": "same: digests are a release-time decision, tags are pinned",
    "CKV_K8S_35": "Secrets reach the app as environment variables, which the app reads by design (12-factor)",
    "CKV_K8S_40": "the images' own users (10001 app, 101 nginx, 999 redis/postgres) are fixed and non-root",
    "CKV_K8S_38": "service account tokens are not mounted (automountServiceAccountToken: false on every pod)",
    "CKV_K8S_15": "tagged images default to IfNotPresent, right for immutable release tags (and kind-loaded ones)",
}
# The hardening left to checkov, which k8s/checks/hardening.py therefore does not repeat.
# None of these may be skipped: tests/k8s/test_checkov.py breaks each thing and expects its
# id. "Every container" includes init containers; probes, as before, are asked only of the
# (not init) containers of Deployments and StatefulSets.
CHECKOV_ENFORCES = {
    "CKV_K8S_8": "a livenessProbe on every long-running container",
    "CKV_K8S_9": "a readinessProbe on every long-running container",
    # CKV_K8S_10 and 12 let a container without any requests: block pass when it has limits:
    # Kubernetes then requests the limits, so the container is still requested and bounded.
    "CKV_K8S_10": "a CPU request on every container",
    "CKV_K8S_11": "a CPU limit on every container",
    "CKV_K8S_12": "a memory request on every container",
    "CKV_K8S_13": "a memory limit on every container",
    "CKV_K8S_16": "no privileged container",
    "CKV_K8S_20": "allowPrivilegeEscalation: false on every container",
    "CKV_K8S_22": "readOnlyRootFilesystem: true on every container",
    # Stricter than the hand-written check was: a Localhost profile fails it too.
    "CKV_K8S_31": "the RuntimeDefault seccomp profile on every pod",
    "CKV_K8S_37": "capabilities dropped (drop: [ALL]) on every container",
}


def check_overlay(overlay: Path, run_checkov: bool = True) -> tuple[list[Manifest], list[str]]:
    """Every check on one overlay; returns its objects and the problems found."""
    objects = render(overlay)
    external = EXTERNAL_OBJECTS.get(overlay.name, frozenset())
    problems = check_schemas(objects, KUBERNETES_VERSION) + check_references(objects, external)
    problems += check_hardening(objects) + check_nginx_config(objects) + check_nginx_syntax(objects)
    if run_checkov:
        problems += check_with_checkov(objects, skip=CHECKOV_SKIPS)
    return objects, problems


def main(argv: list[str] | None = None) -> int:
    """Check the overlays named on the command line (all by default); 1 when any has a problem."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--overlay", action="append", help="overlay name (default: all of k8s/overlays)")
    parser.add_argument(
        "--no-checkov",
        action="store_true",
        help="skip checkov, and with it the resources, probes, seccomp and securityContext checks (CHECKOV_ENFORCES)",
    )
    args = parser.parse_args(argv)
    available = sorted(path.name for path in OVERLAYS.iterdir() if (path / "kustomization.yaml").exists())
    names = args.overlay or available
    unknown = [name for name in names if name not in available]
    if unknown:
        parser.error(f"no overlay {unknown[0]!r}; the overlays are: {', '.join(available)}")
    failed = False
    for name in names:
        objects, problems = check_overlay(OVERLAYS / name, run_checkov=not args.no_checkov)
        if problems:
            failed = True
            print(f"{name}: {len(problems)} problem(s) in {len(objects)} objects:")
            print("\n".join(f"  {problem}" for problem in problems))
        elif args.no_checkov:
            print(
                f"{name}: {len(objects)} objects valid for Kubernetes {KUBERNETES_VERSION}; references, hardening, "
                "nginx config and nginx -t: all pass (checkov not run: resources, probes, seccomp and "
                "securityContext unchecked)"
            )
        else:
            print(
                f"{name}: {len(objects)} objects valid for Kubernetes {KUBERNETES_VERSION}; references, hardening, "
                f"nginx config and nginx -t, checkov ({len(CHECKOV_SKIPS)} checks skipped, see CHECKOV_SKIPS): "
                "all pass"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
