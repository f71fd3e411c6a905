"""k8s/checks/schemas.py: strict validation catches removed APIs, unknown kinds and unknown fields."""

import copy

import check
import pytest
from checks.schemas import check_schemas

from tests.k8s.edits import find


def break_removed_api_version(objects):
    find(objects, "PodDisruptionBudget", "daphne")["apiVersion"] = "policy/v1beta1"


def break_unknown_field(objects):
    find(objects, "Deployment", "gunicorn")["spec"]["replicaz"] = 3


def break_unknown_kind(objects):
    find(objects, "Service", "redis")["kind"] = "Servise"


def test_the_real_overlays_pass(local, production):
    assert check_schemas(local, check.KUBERNETES_VERSION) == []
    assert check_schemas(production, check.KUBERNETES_VERSION) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (break_removed_api_version, "PodDisruptionBudget/daphne: policy/v1beta1 PodDisruptionBudget does not exist"),
        (break_unknown_field, "Deployment/gunicorn: spec: Additional properties are not allowed ('replicaz'"),
        (break_unknown_kind, "Servise/redis: v1 Servise does not exist"),
    ],
)
def test_each_breakage_is_caught(local, breakage, expected):
    broken = copy.deepcopy(local)
    breakage(broken)
    problems = check_schemas(broken, check.KUBERNETES_VERSION)
    assert any(expected in problem for problem in problems), problems
