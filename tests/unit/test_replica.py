"""Replica identity: one rule for X-Replica headers, names in frames and Daphne's Server header."""

from chat import replica

REPLICA = "unit-test-replica"


def test_a_shown_replica_is_named_everywhere(settings):
    settings.CHATSCALE_SHOW_REPLICA = True
    assert replica.shown_name() == REPLICA
    assert replica.response_headers() == [("X-Replica", REPLICA)]
    assert replica.server_name() == "chatscale-replica/" + REPLICA


def test_a_hidden_replica_is_named_nowhere(settings):
    settings.CHATSCALE_SHOW_REPLICA = False
    assert replica.shown_name() is None
    assert replica.response_headers() == []
    assert replica.server_name() == "daphne", "Daphne's own default, which nginx turns into no header"


def test_the_name_comes_from_the_settings(settings):
    settings.CHATSCALE_REPLICA_NAME = "daphne-7"
    assert replica.shown_name() == "daphne-7"
    assert replica.server_name() == "chatscale-replica/daphne-7"
