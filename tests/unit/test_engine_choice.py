"""Which Docker engine the compose test uses (tests/containers/engine.py): the running one, or a private one.

The check for a running engine is passed in, so nothing here needs Docker.
"""

import pytest

from tests.containers.engine import choose_engine


def answers():
    return True


def silent():
    return False


def not_asked():
    raise AssertionError("the default engine should not have been asked")


@pytest.mark.parametrize("setting", [None, "", "auto", " Auto "])
def test_auto_uses_the_engine_that_answers(setting):
    environ = {} if setting is None else {"CHATSCALE_TEST_ENGINE": setting}
    assert choose_engine(environ, answers) == "existing"
    assert choose_engine(environ, silent) == "private"


@pytest.mark.parametrize(
    "variable, value", [("DOCKER_HOST", "unix:///run/user/1000/docker.sock"), ("DOCKER_CONTEXT", "desktop-linux")]
)
def test_a_named_engine_is_used_without_asking_the_default(variable, value):
    """An engine named by DOCKER_HOST or DOCKER_CONTEXT is the one meant, even when it does not answer."""
    assert choose_engine({variable: value}, not_asked) == "existing"


def test_an_empty_docker_host_names_nothing():
    assert choose_engine({"DOCKER_HOST": ""}, silent) == "private"


@pytest.mark.parametrize("setting", ["existing", "EXISTING"])
def test_existing_is_used_even_when_nothing_answers_yet(setting):
    assert choose_engine({"CHATSCALE_TEST_ENGINE": setting}, not_asked) == "existing"


def test_private_is_used_even_beside_a_running_engine():
    environ = {"CHATSCALE_TEST_ENGINE": "private", "DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert choose_engine(environ, not_asked) == "private"


@pytest.mark.parametrize("setting", ["docker", "yes", "host", "privat"])
def test_an_unknown_setting_is_refused_with_the_choices(setting):
    with pytest.raises(ValueError, match=f"CHATSCALE_TEST_ENGINE='{setting}' is not one of auto, existing, private"):
        choose_engine({"CHATSCALE_TEST_ENGINE": setting}, not_asked)
