"""k8s/checks/nginx.py: the nginx ConfigMaps equal nginx/ and pass `nginx -t`."""

import copy

from checks.nginx import check_nginx_config, check_nginx_syntax


def config_map(objects, prefix):
    """A generated ConfigMap, found by its name before kustomize's hash."""
    return next(obj for obj in objects if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith(prefix))


def test_the_real_overlays_pass(local, production):
    assert check_nginx_config(local) == check_nginx_config(production) == []
    assert check_nginx_syntax(local) == check_nginx_syntax(production) == []


def test_a_copied_nginx_config_that_drifted_is_caught(local):
    broken = copy.deepcopy(local)
    config_map(broken, "nginx-shared")["data"]["server.conf"] += "\n# edited in the cluster only\n"
    assert any("server.conf differs from nginx/server.conf" in problem for problem in check_nginx_config(broken))


def test_an_nginx_directive_nginx_rejects_is_caught(local):
    broken = copy.deepcopy(local)
    main = config_map(broken, "nginx-main")
    main["data"]["nginx.conf"] = main["data"]["nginx.conf"].replace("least_conn;", "least_conections;")
    problems = check_nginx_syntax(broken)
    assert any("least_conections" in problem for problem in problems), problems
