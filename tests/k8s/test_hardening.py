"""k8s/checks/hardening.py: each workload's hardening, broken one way at a time, is caught."""

import copy

import pytest
from checks.hardening import check_hardening

from tests.k8s.edits import container, find, init_container, pod_spec


def break_privilege(objects):
    container(objects, "Deployment", "redis")["securityContext"]["allowPrivilegeEscalation"] = True


def break_limits(objects):
    del container(objects, "Deployment", "nginx")["resources"]["limits"]


def break_probes(objects):
    del container(objects, "Deployment", "daphne")["livenessProbe"]


def break_root(objects):
    pod_spec(objects, "Deployment", "daphne")["securityContext"]["runAsNonRoot"] = False


def break_writable_root(objects):
    container(objects, "StatefulSet", "postgres")["securityContext"]["readOnlyRootFilesystem"] = False


def break_init_container(objects):
    init_container(objects, "Deployment", "gunicorn")["securityContext"]["readOnlyRootFilesystem"] = False


def break_labels(objects):
    del find(objects, "Deployment", "gunicorn")["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"]


def break_image_override(objects):
    container(objects, "Deployment", "daphne")["image"] = "chatscale-app"


def break_token(objects):
    del pod_spec(objects, "Job", "migrate")["automountServiceAccountToken"]


def test_the_real_overlays_pass(local, production):
    assert check_hardening(local) == []
    assert check_hardening(production) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (break_privilege, "Deployment/redis redis: allowPrivilegeEscalation is not false"),
        (break_limits, "Deployment/nginx nginx: no cpu limit"),
        (break_probes, "Deployment/daphne daphne: no livenessProbe"),
        (break_root, "Deployment/daphne: pods may run as root"),
        (break_writable_root, "StatefulSet/postgres postgres: the root filesystem is writable"),
        (break_init_container, "Deployment/gunicorn wait-for-migrations: the root filesystem is writable"),
        (break_labels, "Deployment/gunicorn: pods lack the label app.kubernetes.io/part-of"),
        (break_image_override, "Deployment/daphne daphne: image chatscale-app has no tag"),
        (break_token, "Job/migrate: the service account token is mounted"),
    ],
)
def test_each_breakage_is_caught(local, breakage, expected):
    broken = copy.deepcopy(local)
    breakage(broken)
    problems = check_hardening(broken)
    assert any(expected in problem for problem in problems), problems
