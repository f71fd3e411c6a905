"""k8s/checks/references.py: each kind of broken reference is caught by its own check, and by the driver."""

import copy

import check
import pytest
from checks import references

from tests.k8s.edits import container, find, pod_spec


def break_service_port(objects):
    find(objects, "Service", "gunicorn")["spec"]["ports"][0]["targetPort"] = "htp"


def break_service_selector(objects):
    find(objects, "Service", "postgres")["spec"]["selector"] = {"app.kubernetes.io/name": "postgress"}


def break_selector(objects):
    find(objects, "Deployment", "daphne")["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "dafne"}


def break_probe(objects):
    container(objects, "Deployment", "daphne")["readinessProbe"]["httpGet"]["port"] = 9999


def break_service_account(objects):
    pod_spec(objects, "Deployment", "nginx")["serviceAccountName"] = "ghost"


def break_config_map_reference(objects):
    container(objects, "Deployment", "gunicorn")["envFrom"][0]["configMapRef"]["name"] = "missing-settings"


def break_secret_reference(objects):
    objects.remove(next(obj for obj in objects if obj["kind"] == "Secret"))


def break_secret_key(objects):
    secret = next(obj for obj in objects if obj["kind"] == "Secret")
    del secret["data"]["POSTGRES_PASSWORD"]


def break_config_map_volume(objects):
    volume = next(volume for volume in pod_spec(objects, "Deployment", "nginx")["volumes"] if "configMap" in volume)
    volume["configMap"]["name"] = "nginx-gone"


def break_autoscaler_target(objects):
    find(objects, "HorizontalPodAutoscaler", "daphne")["spec"]["scaleTargetRef"]["name"] = "daphnee"


def break_autoscaler_requests(objects):
    del container(objects, "Deployment", "gunicorn")["resources"]["requests"]["cpu"]


def break_replicas_beside_autoscaler(objects):
    find(objects, "Deployment", "daphne")["spec"]["replicas"] = 3


def break_autoscaler_bounds(objects):
    find(objects, "HorizontalPodAutoscaler", "gunicorn")["spec"]["minReplicas"] = 50


def break_budget(objects):
    find(objects, "PodDisruptionBudget", "nginx")["spec"]["selector"]["matchLabels"] = {
        "app.kubernetes.io/name": "ngnix"
    }


def break_network_policy(objects):
    find(objects, "NetworkPolicy", "redis")["spec"]["podSelector"]["matchLabels"] = {"app.kubernetes.io/name": "rediss"}


def break_network_peer(objects):
    policy = find(objects, "NetworkPolicy", "app-servers")
    policy["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"] = {"app.kubernetes.io/name": "nothing"}


def break_ingress_backend(objects):
    find(objects, "Ingress", "chatscale")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "web"


def break_ingress_port(objects):
    backend = find(objects, "Ingress", "chatscale")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    backend["port"] = {"name": "https"}


# (breakage, the check that must catch it, a part of its message)
LOCAL_BREAKAGES = [
    (break_selector, references.check_workloads, "Deployment/daphne: selector {'app.kubernetes.io/name': 'dafne'}"),
    (break_probe, references.check_workloads, "container daphne's readinessProbe uses port 9999"),
    (break_service_account, references.check_workloads, "Deployment/nginx: ServiceAccount ghost does not exist"),
    (
        break_config_map_reference,
        references.check_configuration_sources,
        "Deployment/gunicorn: container gunicorn reads ConfigMap missing-settings, which does not exist",
    ),
    (
        break_secret_reference,
        references.check_configuration_sources,
        "Deployment/gunicorn: container gunicorn reads Secret chatscale-secrets-",
    ),
    (
        break_secret_key,
        references.check_configuration_sources,
        "StatefulSet/postgres: container postgres's variable POSTGRES_PASSWORD reads key POSTGRES_PASSWORD of",
    ),
    (
        break_config_map_volume,
        references.check_configuration_sources,
        "mounts ConfigMap nginx-gone, which does not exist",
    ),
    (break_service_port, references.check_services, "Service/gunicorn: targetPort htp is not a port"),
    (break_service_selector, references.check_services, "Service/postgres: selector"),
    (
        break_autoscaler_target,
        references.check_autoscalers,
        "HorizontalPodAutoscaler/daphne: its target Deployment/daphnee does not exist",
    ),
    (
        break_autoscaler_requests,
        references.check_autoscalers,
        "HorizontalPodAutoscaler/gunicorn: scales on CPU, but container gunicorn of Deployment/gunicorn requests no",
    ),
    (
        break_replicas_beside_autoscaler,
        references.check_autoscalers,
        "HorizontalPodAutoscaler/daphne: Deployment/daphne also sets spec.replicas",
    ),
    (
        break_autoscaler_bounds,
        references.check_autoscalers,
        "HorizontalPodAutoscaler/gunicorn: minReplicas 50 exceeds maxReplicas 6",
    ),
    (break_budget, references.check_disruption_budgets, "PodDisruptionBudget/nginx: selector"),
    (break_network_policy, references.check_network_policies, "NetworkPolicy/redis: podSelector"),
    (break_network_peer, references.check_network_policies, "NetworkPolicy/app-servers: egress peer"),
]
PRODUCTION_BREAKAGES = [
    (break_ingress_backend, references.check_ingresses, "Ingress/chatscale: backend Service web does not exist"),
    (break_ingress_port, references.check_ingresses, "Ingress/chatscale: Service nginx has no port https"),
]


def name_of(case):
    return case[0].__name__


def test_the_real_overlays_pass(local, production):
    assert references.check_references(local, check.EXTERNAL_OBJECTS["local"]) == []
    assert references.check_references(production, check.EXTERNAL_OBJECTS["production"]) == []


def test_production_needs_its_external_secrets(production):
    problems = references.check_references(production)
    assert any("reads Secret chatscale-secrets, which does not exist" in problem for problem in problems), problems


@pytest.mark.parametrize(("breakage", "kind_check", "expected"), LOCAL_BREAKAGES, ids=map(name_of, LOCAL_BREAKAGES))
def test_each_local_breakage_is_caught(local, breakage, kind_check, expected):
    assert_caught(local, check.EXTERNAL_OBJECTS["local"], breakage, kind_check, expected)


@pytest.mark.parametrize(
    ("breakage", "kind_check", "expected"), PRODUCTION_BREAKAGES, ids=map(name_of, PRODUCTION_BREAKAGES)
)
def test_each_production_breakage_is_caught(production, breakage, kind_check, expected):
    assert_caught(production, check.EXTERNAL_OBJECTS["production"], breakage, kind_check, expected)


def assert_caught(healthy, external, breakage, kind_check, expected):
    """The breakage is reported by its own kind's check, and by check_references, which runs them all."""
    broken = copy.deepcopy(healthy)
    breakage(broken)
    # Only the workload checks take `external`; neither overlay's breakages need it.
    own = kind_check(broken)
    assert any(expected in problem for problem in own), own
    assert any(expected in problem for problem in references.check_references(broken, external))
