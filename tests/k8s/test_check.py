"""k8s/check.py: the real overlays pass every check, and the command line refuses what it cannot check."""

import check
import pytest


@pytest.mark.parametrize("overlay", ["local", "production"])
def test_the_real_overlays_pass_every_check_but_checkov(overlay):
    # checkov runs once, in tests/k8s/test_checkov.py (and in `make k8s-check` itself).
    objects, problems = check.check_overlay(check.OVERLAYS / overlay, run_checkov=False)
    assert problems == []
    assert len(objects) > 20


def test_an_unknown_overlay_is_refused(capsys):
    with pytest.raises(SystemExit):
        check.main(["--overlay", "staging", "--no-checkov"])
    assert "the overlays are: local, production" in capsys.readouterr().err


def test_every_overlay_has_its_list_of_external_objects():
    overlays = {path.name for path in check.OVERLAYS.iterdir() if (path / "kustomization.yaml").exists()}
    assert overlays == set(check.EXTERNAL_OBJECTS)
