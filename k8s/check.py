"""Offline checks of the Kubernetes manifests: no API server can run where this is tested.

    python k8s/check.py                      every overlay, every check
    python k8s/check.py --overlay local      one overlay

For each overlay: render it with kustomize (kubectl kustomize); validate every object
strictly against the schemas of KUBERNETES_VERSION (an unknown or removed apiVersion or
kind is an error); cross-check references between objects; check each workload's
hardening; compare the nginx ConfigMap with the files in nginx/ and run `nginx -t` on the
assembled configuration; run checkov's Kubernetes checks (skipped checks and their
reasons are listed in CHECKOV_SKIPS).
Exits 1 with one line per problem when anything fails. The checks live in k8s/checks/.
"""

import argparse
import sys
from pathlib import Path

from checks.checkov import check_with_checkov
from checks.hardening import check_hardening
from checks.manifests import Manifest, render
from checks.nginx import check_nginx_config, check_nginx_syntax
from checks.references import ObjectKey, check_references
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
        help="skip the checkov security lint",
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
                "nginx config and nginx -t: all pass (checkov not run)"
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
