"""Fixtures that start real native clusters (integration and browser tests); unit tests never ask for them.

Registered for every test folder by tests/conftest.py.
"""

import pytest

from tests.support.cluster import RunningCluster, pid_alive


def start_cluster(tmp_path_factory, name, **options):
    cluster = RunningCluster(tmp_path_factory.mktemp(name) / "cluster", **options)
    return cluster


def stop_and_check(cluster):
    """Stop like Ctrl-C does and fail if any process the cluster started outlives it."""
    status = cluster.stop()
    survivors = [pid for pid in cluster.pids if pid_alive(pid)]
    assert not survivors, f"processes left running after Ctrl-C: {survivors}\n{cluster.log()}"
    assert status == 0, f"supervisor exited {status} on Ctrl-C:\n{cluster.log()}"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """One 3-replica cluster shared by the tests that do not break it."""
    running = start_cluster(tmp_path_factory, "shared")
    yield running
    stop_and_check(running)


@pytest.fixture
def own_cluster(tmp_path_factory):
    """A fresh 3-replica cluster for a test that kills parts of it."""
    running = start_cluster(tmp_path_factory, "own")
    yield running
    stop_and_check(running)
