"""k8s/check.py must pass the real overlays and fail on each kind of broken manifest."""

import copy
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("k8s_check", ROOT / "k8s" / "check.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


@pytest.fixture(scope="module")
def rendered():
    """The local overlay as kustomize renders it (k8s/overlays/local/secrets.env must exist: make k8s-secrets)."""
    return check.render(ROOT / "k8s" / "overlays" / "local")


def find(objects, kind, name):
    return next(obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name)


def container(objects, kind, name):
    return find(objects, kind, name)["spec"]["template"]["spec"]["containers"][0]


def all_problems(objects):
    return check.check_schemas(objects) + check.check_references(objects) + check.check_hardening(objects)


def test_the_real_overlays_pass(rendered):
    assert all_problems(rendered) == []
    assert check.check_nginx_config(rendered) == []
    production = check.render(ROOT / "k8s" / "overlays" / "production")
    assert check.check_references(production, check.EXTERNAL_OBJECTS["production"]) == []
    assert check.check_schemas(production) + check.check_hardening(production) == []


def break_service_port(objects):
    find(objects, "Service", "gunicorn")["spec"]["ports"][0]["targetPort"] = "htp"


def break_selector(objects):
    find(objects, "Deployment", "daphne")["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "dafne"}


def break_probe(objects):
    container(objects, "Deployment", "daphne")["readinessProbe"]["httpGet"]["port"] = 9999


def break_autoscaler_target(objects):
    find(objects, "HorizontalPodAutoscaler", "daphne")["spec"]["scaleTargetRef"]["name"] = "daphnee"


def break_autoscaler_requests(objects):
    del container(objects, "Deployment", "gunicorn")["resources"]["requests"]["cpu"]


def break_budget(objects):
    find(objects, "PodDisruptionBudget", "nginx")["spec"]["selector"]["matchLabels"] = {
        "app.kubernetes.io/name": "ngnix"
    }


def break_network_policy(objects):
    find(objects, "NetworkPolicy", "redis")["spec"]["podSelector"]["matchLabels"] = {"app.kubernetes.io/name": "rediss"}


def break_network_peer(objects):
    policy = find(objects, "NetworkPolicy", "app-servers")
    policy["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"] = {"app.kubernetes.io/name": "nothing"}


def break_config_map_reference(objects):
    container(objects, "Deployment", "gunicorn")["envFrom"][0]["configMapRef"]["name"] = "missing-settings"


def break_secret_reference(objects):
    objects.remove(next(obj for obj in objects if obj["kind"] == "Secret"))


def break_service_account(objects):
    find(objects, "Deployment", "nginx")["spec"]["template"]["spec"]["serviceAccountName"] = "ghost"


def break_removed_api_version(objects):
    find(objects, "PodDisruptionBudget", "daphne")["apiVersion"] = "policy/v1beta1"


def break_unknown_field(objects):
    find(objects, "Deployment", "gunicorn")["spec"]["replicaz"] = 3


def break_unknown_kind(objects):
    find(objects, "Service", "redis")["kind"] = "Servise"


def break_privilege(objects):
    container(objects, "Deployment", "redis")["securityContext"]["allowPrivilegeEscalation"] = True


def break_limits(objects):
    del container(objects, "Deployment", "nginx")["resources"]["limits"]


def break_probes(objects):
    del container(objects, "Deployment", "daphne")["livenessProbe"]


def break_root(objects):
    find(objects, "Deployment", "daphne")["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False


def break_writable_root(objects):
    container(objects, "StatefulSet", "postgres")["securityContext"]["readOnlyRootFilesystem"] = False


def break_labels(objects):
    del find(objects, "Deployment", "gunicorn")["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"]


def break_image_override(objects):
    container(objects, "Deployment", "daphne")["image"] = "chatscale-app"


def break_replicas_beside_autoscaler(objects):
    find(objects, "Deployment", "daphne")["spec"]["replicas"] = 3


def break_autoscaler_bounds(objects):
    find(objects, "HorizontalPodAutoscaler", "gunicorn")["spec"]["minReplicas"] = 50


def break_init_container(objects):
    pod = find(objects, "Deployment", "gunicorn")["spec"]["template"]["spec"]
    pod["initContainers"][0]["securityContext"]["readOnlyRootFilesystem"] = False


def break_secret_key(objects):
    secret = next(obj for obj in objects if obj["kind"] == "Secret")
    del secret["data"]["POSTGRES_PASSWORD"]


@pytest.mark.parametrize(
    "breakage",
    [
        break_image_override,
        break_replicas_beside_autoscaler,
        break_autoscaler_bounds,
        break_init_container,
        break_secret_key,
        break_service_port,
        break_selector,
        break_probe,
        break_autoscaler_target,
        break_autoscaler_requests,
        break_budget,
        break_network_policy,
        break_network_peer,
        break_config_map_reference,
        break_secret_reference,
        break_service_account,
        break_removed_api_version,
        break_unknown_field,
        break_unknown_kind,
        break_privilege,
        break_limits,
        break_probes,
        break_root,
        break_writable_root,
        break_labels,
    ],
)
def test_each_breakage_is_caught(rendered, breakage):
    broken = copy.deepcopy(rendered)
    breakage(broken)
    assert all_problems(broken), f"{breakage.__name__} went unnoticed"


def test_an_ingress_to_a_missing_service_is_caught():
    production = check.render(ROOT / "k8s" / "overlays" / "production")
    find(production, "Ingress", "chatscale")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = (
        "web"
    )
    assert any(
        "backend Service web" in p for p in check.check_references(production, check.EXTERNAL_OBJECTS["production"])
    )


def test_a_copied_nginx_config_that_drifted_is_caught(rendered):
    broken = copy.deepcopy(rendered)
    config_map = next(obj for obj in broken if obj["metadata"]["name"].startswith("nginx-shared"))
    config_map["data"]["server.conf"] += "\n# edited in the cluster only\n"
    assert any("server.conf differs" in problem for problem in check.check_nginx_config(broken))


def test_checkov_fails_an_insecure_workload(rendered):
    broken = copy.deepcopy(rendered)
    pod = find(broken, "Deployment", "daphne")["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"]["privileged"] = True
    problems = check.check_with_checkov(broken)
    assert any("daphne" in problem for problem in problems), problems
    assert check.check_with_checkov(rendered) == []


def test_an_unknown_overlay_is_refused():
    with pytest.raises(SystemExit):
        check.main(["--overlay", "staging", "--no-checkov"])


def test_an_nginx_directive_nginx_rejects_is_caught(rendered):
    assert check.check_nginx_syntax(rendered) == []
    broken = copy.deepcopy(rendered)
    main = next(obj for obj in broken if obj["metadata"]["name"].startswith("nginx-main"))
    main["data"]["nginx.conf"] = main["data"]["nginx.conf"].replace("least_conn;", "least_conections;")
    assert check.check_nginx_syntax(broken)
