"""k8s/checks/checkov.py: checkov passes the local overlay and fails an insecure workload."""

import copy

import check
from checks.checkov import check_with_checkov

from tests.k8s.edits import pod_spec


def test_checkov_fails_an_insecure_workload(local):
    broken = copy.deepcopy(local)
    pod = pod_spec(broken, "Deployment", "daphne")
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"]["privileged"] = True
    problems = check_with_checkov(broken, skip=check.CHECKOV_SKIPS)
    assert any("daphne" in problem for problem in problems), problems
    assert check_with_checkov(local, skip=check.CHECKOV_SKIPS) == []
