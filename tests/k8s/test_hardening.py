"""k8s/checks/hardening.py: the hardening checkov leaves alone on these manifests is checked by hand."""

import copy

import pytest
from checks.hardening import check_hardening

from tests.k8s.edits import container, find, pod_spec


def break_root(objects):
    # runAsUser stays 10001: checkov's CKV_K8S_23 accepts that; the restricted namespace does not.
    pod_spec(objects, "Deployment", "daphne")["securityContext"]["runAsNonRoot"] = False


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
        (break_root, "Deployment/daphne: pods may run as root"),
        (break_labels, "Deployment/gunicorn: pods lack the label app.kubernetes.io/part-of"),
        (break_image_override, "Deployment/daphne: container daphne's image chatscale-app has no tag"),
        (break_token, "Job/migrate: pods mount the service account token"),
    ],
)
def test_each_breakage_is_caught(local, breakage, expected):
    broken = copy.deepcopy(local)
    breakage(broken)
    problems = check_hardening(broken)
    assert any(expected in problem for problem in problems), problems
