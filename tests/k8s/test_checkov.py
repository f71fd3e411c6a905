"""k8s/checks/checkov.py: checkov catches each breakage that the hand-written hardening leaves to it.

checkov takes seconds per run, so every broken variant goes into one run beside the healthy
local overlay: each variant's broken object is renamed after its breakage, and checkov's
report names it, so each test reads its own lines.
"""

import copy
import re

import check
import pytest
from checks.checkov import check_with_checkov

from tests.k8s.edits import container, init_container, pod_spec


def break_privilege(objects):
    container(objects, "Deployment", "redis")["securityContext"]["allowPrivilegeEscalation"] = True


def break_job_privilege(objects):
    container(objects, "Job", "migrate")["securityContext"]["allowPrivilegeEscalation"] = True


def break_limits(objects):
    del container(objects, "Deployment", "nginx")["resources"]["limits"]


def break_requests(objects):
    # Not the whole requests: block: checkov answers UNKNOWN then, since Kubernetes requests the limits.
    requests = container(objects, "Deployment", "redis")["resources"]["requests"]
    del requests["cpu"], requests["memory"]


def break_init_container_limits(objects):
    del init_container(objects, "Deployment", "daphne")["resources"]["limits"]["memory"]


def break_probes(objects):
    del container(objects, "Deployment", "daphne")["livenessProbe"]


def break_readiness(objects):
    del container(objects, "StatefulSet", "postgres")["readinessProbe"]


def break_writable_root(objects):
    container(objects, "StatefulSet", "postgres")["securityContext"]["readOnlyRootFilesystem"] = False


def break_init_container(objects):
    init_container(objects, "Deployment", "gunicorn")["securityContext"]["readOnlyRootFilesystem"] = False


def break_capabilities(objects):
    container(objects, "Deployment", "gunicorn")["securityContext"]["capabilities"]["drop"] = ["NET_RAW"]


def break_seccomp(objects):
    del pod_spec(objects, "Deployment", "nginx")["securityContext"]["seccompProfile"]


def break_insecure_pod(objects):
    pod = pod_spec(objects, "Deployment", "daphne")
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"]["privileged"] = True


# (breakage, the checkov ids that must report it)
CHECKOV_CATCHES = [
    (break_privilege, {"CKV_K8S_20"}),
    (break_job_privilege, {"CKV_K8S_20"}),
    (break_limits, {"CKV_K8S_11", "CKV_K8S_13"}),
    (break_requests, {"CKV_K8S_10", "CKV_K8S_12"}),
    (break_init_container_limits, {"CKV_K8S_13"}),
    (break_probes, {"CKV_K8S_8"}),
    (break_readiness, {"CKV_K8S_9"}),
    (break_writable_root, {"CKV_K8S_22"}),
    (break_init_container, {"CKV_K8S_22"}),
    (break_capabilities, {"CKV_K8S_37"}),
    (break_seccomp, {"CKV_K8S_31"}),
    (break_insecure_pod, {"CKV_K8S_16", "CKV_K8S_19"}),
]
# check_with_checkov's line: "checkov <id> (<title>): <Kind>.<namespace>.<name>; <what to do>"
REPORTED = re.compile(r"^checkov (?P<check_id>\S+) \(.*\): \w+\.[^.]+\.(?P<name>[^;]+);")


def suffix(breakage):
    """What a variant's object name gets: -break-privilege for break_privilege."""
    return "-" + breakage.__name__.replace("_", "-")


def broken_objects(healthy, breakage):
    """The objects a breakage changed, renamed after it so that checkov's report tells them apart."""
    broken = copy.deepcopy(healthy)
    breakage(broken)
    changed = [obj for obj, before in zip(broken, healthy, strict=True) if obj != before]
    for obj in changed:
        obj["metadata"]["name"] += suffix(breakage)
    return changed


@pytest.fixture(scope="module")
def reported(local):
    """(check id, object name) of every failure in one checkov run over the healthy overlay and every variant."""
    objects = copy.deepcopy(local)
    for breakage, _ in CHECKOV_CATCHES:
        objects += broken_objects(local, breakage)
    problems = check_with_checkov(objects, skip=check.CHECKOV_SKIPS)
    matched = [REPORTED.match(problem) for problem in problems]
    assert all(matched), problems
    return {(match["check_id"], match["name"]) for match in matched if match}


def test_the_healthy_overlay_passes(reported):
    variant_suffixes = tuple(suffix(breakage) for breakage, _ in CHECKOV_CATCHES)
    assert [failure for failure in reported if not failure[1].endswith(variant_suffixes)] == []


@pytest.mark.parametrize(("breakage", "check_ids"), CHECKOV_CATCHES, ids=[case[0].__name__ for case in CHECKOV_CATCHES])
def test_checkov_catches(local, reported, breakage, check_ids):
    (changed,) = broken_objects(local, breakage)
    caught = {check_id for check_id, name in reported if name == changed["metadata"]["name"]}
    assert check_ids <= caught, f"{breakage.__name__}: checkov reported {sorted(caught)}"


def test_every_check_left_to_checkov_is_proven_here():
    proven = set().union(*(check_ids for _, check_ids in CHECKOV_CATCHES))
    assert set(check.CHECKOV_ENFORCES) <= proven


def test_no_check_left_to_checkov_is_skipped():
    # Skipping one of these would silently drop part of every workload's hardening.
    assert set(check.CHECKOV_ENFORCES).isdisjoint(check.CHECKOV_SKIPS)
