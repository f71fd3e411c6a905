"""Makes the shared fixtures of tests/support/ available to every test folder."""

from tests.support.fixtures import cluster, own_cluster  # noqa: F401 (pytest finds fixtures by name)
