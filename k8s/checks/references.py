"""Cross-object references: every name, selector and port an object uses must lead to another object.

These are mistakes `kubectl apply` accepts and a cluster shows only later, as pods that
never start or never get traffic; no API server runs where this is tested. One function
per kind of object that refers to others; check_references runs them all.
"""

from collections.abc import Iterable, Set

from .manifests import (
    Manifest,
    ObjectKey,
    container_ports,
    containers_of,
    matches,
    name_of,
    of_kind,
    pod_templates,
    pods_selected,
)

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
PROBE_HANDLERS_WITH_PORTS = ("httpGet", "tcpSocket", "grpc")
GENERATORS = {"ConfigMap": "configMapGenerator", "Secret": "secretGenerator"}


def check_references(objects: list[Manifest], external: Set[ObjectKey] = frozenset()) -> list[str]:
    """Every reference check; `external` names the objects the overlay expects the cluster to have already."""
    return (
        check_workloads(objects, external)
        + check_configuration_sources(objects, external)
        + check_services(objects)
        + check_autoscalers(objects)
        + check_disruption_budgets(objects)
        + check_network_policies(objects)
        + check_ingresses(objects)
    )


def check_workloads(objects: list[Manifest], external: Set[ObjectKey] = frozenset()) -> list[str]:
    """Deployments, StatefulSets and Jobs: the selector picks the pods, the ServiceAccount exists, probes hit ports."""
    existing = existing_objects(objects, external)
    problems = []
    for workload, template in pod_templates(objects):
        where = name_of(workload)
        labels = template["metadata"].get("labels", {})
        selector = workload["spec"].get("selector", {}).get("matchLabels")
        # Kubernetes writes a Job's selector itself (unless manualSelector is set).
        if workload["kind"] != "Job" and not matches(selector, labels):
            problems.append(
                f"{where}: selector {selector} does not match its pod labels {labels}; "
                "make spec.selector.matchLabels a subset of spec.template.metadata.labels"
            )
        account = template["spec"].get("serviceAccountName")
        if account and ("ServiceAccount", account) not in existing:
            problems.append(
                f"{where}: ServiceAccount {account} does not exist; add it beside the {workload['kind']} "
                "or fix serviceAccountName"
            )
        ports = container_ports(template)
        for container in containers_of(template):
            for probe_kind in PROBES:
                for handler in PROBE_HANDLERS_WITH_PORTS:
                    port = container.get(probe_kind, {}).get(handler, {}).get("port")
                    if port is not None and port not in ports:
                        problems.append(
                            f"{where}: container {container['name']}'s {probe_kind} uses port {port}, "
                            f"which no container declares; use one of: {listing(ports)}"
                        )
    return problems


def check_configuration_sources(objects: list[Manifest], external: Set[ObjectKey] = frozenset()) -> list[str]:
    """ConfigMaps and Secrets that pods read (envFrom, env, volumes): each exists and has the keys read from it."""
    existing = existing_objects(objects, external)
    keys = {
        (obj["kind"], obj["metadata"]["name"]): set(obj.get("data", {}))
        | set(obj.get("stringData", {}))
        | set(obj.get("binaryData", {}))
        for obj in of_kind(objects, "ConfigMap", "Secret")
    }
    problems = []
    for workload, template in pod_templates(objects):
        where = name_of(workload)
        for container in containers_of(template):
            reader = f"container {container['name']}"
            for source in container.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in source and (kind, source[field]["name"]) not in existing:
                        problems.append(missing_source(where, f"{reader} reads", kind, source[field]["name"]))
            for variable in container.get("env", []):
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    reference = variable.get("valueFrom", {}).get(field)
                    if not reference:
                        continue
                    name, key = reference["name"], reference["key"]
                    user = f"{reader}'s variable {variable['name']} reads"
                    if (kind, name) not in existing:
                        problems.append(missing_source(where, user, kind, name))
                    # The keys of an external object are unknown here.
                    elif (kind, name) in keys and key not in keys[(kind, name)]:
                        problems.append(
                            f"{where}: {user} key {key} of {kind} {name}, which has no such key; "
                            f"add the key to the {kind} or fix the {field}"
                        )
        for volume in template["spec"].get("volumes", []):
            for kind, field, name_field in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                name = volume.get(field, {}).get(name_field)
                if name and (kind, name) not in existing:
                    problems.append(missing_source(where, f"volume {volume['name']} mounts", kind, name))
    return problems


def check_services(objects: list[Manifest]) -> list[str]:
    """Services: the selector picks some pods, and every targetPort is a port those pods declare."""
    problems = []
    for service in of_kind(objects, "Service"):
        where = name_of(service)
        selector = service["spec"].get("selector")
        selected = pods_selected(objects, selector)
        if not selected:
            problems.append(
                f"{where}: selector {selector} matches no pods; use the labels of the pods it should send traffic to"
            )
            continue
        ports = set().union(*(container_ports(template) for template in selected))
        for port in service["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if target not in ports:
                problems.append(
                    f"{where}: targetPort {target} is not a port of the selected pods; use one of: {listing(ports)}"
                )
    return problems


def check_autoscalers(objects: list[Manifest]) -> list[str]:
    """HorizontalPodAutoscalers: the target exists and leaves replicas alone, bounds are ordered, CPU is requested."""
    workloads = {(obj["kind"], obj["metadata"]["name"]): obj for obj, _ in pod_templates(objects)}
    problems = []
    for autoscaler in of_kind(objects, "HorizontalPodAutoscaler"):
        where = name_of(autoscaler)
        spec = autoscaler["spec"]
        target = spec["scaleTargetRef"]
        workload = workloads.get((target["kind"], target["name"]))
        if workload is None:
            problems.append(
                f"{where}: its target {target['kind']}/{target['name']} does not exist; fix spec.scaleTargetRef"
            )
            continue
        if "replicas" in workload["spec"]:
            problems.append(
                f"{where}: {name_of(workload)} also sets spec.replicas, which every apply would reset; "
                "remove replicas and let the autoscaler own the count"
            )
        lowest, highest = spec.get("minReplicas", 1), spec["maxReplicas"]
        if lowest > highest:
            problems.append(
                f"{where}: minReplicas {lowest} exceeds maxReplicas {highest}; lower minReplicas or raise maxReplicas"
            )
        # CPU utilization is a share of the request: without one the autoscaler cannot compute it.
        if any(metric.get("resource", {}).get("name") == "cpu" for metric in spec.get("metrics", [])):
            for container in workload["spec"]["template"]["spec"]["containers"]:
                if "cpu" not in container.get("resources", {}).get("requests", {}):
                    problems.append(
                        f"{where}: scales on CPU, but container {container['name']} of {name_of(workload)} "
                        "requests no CPU; set its resources.requests.cpu"
                    )
    return problems


def check_disruption_budgets(objects: list[Manifest]) -> list[str]:
    """PodDisruptionBudgets: the selector picks some pods (a budget that selects none protects nothing)."""
    problems = []
    for budget in of_kind(objects, "PodDisruptionBudget"):
        selector = budget["spec"].get("selector", {}).get("matchLabels")
        if not pods_selected(objects, selector):
            problems.append(
                f"{name_of(budget)}: selector {selector} matches no pods, so it protects nothing; "
                "use the labels of the pods it should keep available"
            )
    return problems


def check_network_policies(objects: list[Manifest]) -> list[str]:
    """NetworkPolicies: the podSelector and every pod peer pick some pods of the overlay."""
    problems = []
    for policy in of_kind(objects, "NetworkPolicy"):
        where = name_of(policy)
        selector = policy["spec"]["podSelector"].get("matchLabels")
        # An empty podSelector means every pod of the namespace (the default-deny policy).
        if selector and not pods_selected(objects, selector):
            problems.append(
                f"{where}: podSelector {selector} matches no pods, so the policy governs nothing; "
                "use the labels of the pods it is for"
            )
        for direction, peers_field in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                for peer in rule.get(peers_field, []):
                    peer_selector = peer.get("podSelector", {}).get("matchLabels")
                    # With a namespaceSelector the peer's pods live elsewhere, out of this overlay's sight.
                    if peer_selector and "namespaceSelector" not in peer and not pods_selected(objects, peer_selector):
                        problems.append(
                            f"{where}: {direction} peer {peer_selector} matches no pods, so that rule allows "
                            "nothing; use the labels of the pods it should allow"
                        )
    return problems


def check_ingresses(objects: list[Manifest]) -> list[str]:
    """Ingresses: every backend names an existing Service and one of its ports."""
    services = {obj["metadata"]["name"]: obj for obj in of_kind(objects, "Service")}
    problems = []
    for ingress in of_kind(objects, "Ingress"):
        where = name_of(ingress)
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"].get("service")
                if backend is None:
                    continue
                service = services.get(backend["name"])
                if service is None:
                    problems.append(
                        f"{where}: backend Service {backend['name']} does not exist; use one of: {listing(services)}"
                    )
                    continue
                wanted = backend["port"].get("name", backend["port"].get("number"))
                offered = {port.get("name") for port in service["spec"]["ports"]} | {
                    port["port"] for port in service["spec"]["ports"]
                }
                if wanted not in offered:
                    problems.append(
                        f"{where}: Service {backend['name']} has no port {wanted}; "
                        f"use one of: {listing(offered - {None})}"
                    )
    return problems


def existing_objects(objects: list[Manifest], external: Set[ObjectKey]) -> set[ObjectKey]:
    """(kind, name) of every rendered object, and of those the overlay expects the cluster to have already."""
    return {(obj["kind"], obj["metadata"]["name"]) for obj in objects} | set(external)


def missing_source(where: str, reader: str, kind: str, name: str) -> str:
    """The message for a ConfigMap or Secret that a pod reads but nothing creates."""
    return (
        f"{where}: {reader} {kind} {name}, which does not exist; create it in the overlay "
        f"({GENERATORS[kind]}), or add it to EXTERNAL_OBJECTS in k8s/check.py if the cluster provides it"
    )


def listing(values: Iterable[object]) -> str:
    """Names or numbers for a message, sorted, or 'none'."""
    return ", ".join(sorted(str(value) for value in values)) or "none"
