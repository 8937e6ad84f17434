"""The checkpoint clean-up runbook against the simulated fabric."""
import pytest

from ops.models import Run
from ops.services.runs import start_run

from ._engine_support import driver, events  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def checkpoints(sim, cloud=None):
    return {vm["name"]: vm["checkpoints"] for vm in sim.state()["vms"] if cloud is None or vm["cloud"] == cloud}


def test_dry_run_lists_what_would_go_and_changes_nothing(sim, operator, driver):
    before = checkpoints(sim)
    run = start_run(operator, "checkpoint-cleanup", {"cloud": "Silver", "older_than_days": "100", "dry_run": "true"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED
    assert checkpoints(sim) == before
    listing = next(m for m in events(run) if "would be removed" in m)
    assert "web01: 'baseline'" in listing  # 292 days old, Silver
    assert "crm01" not in listing  # Gold
    assert run.message.startswith("Dry run:")


def test_older_than_days_removes_old_checkpoints_in_one_cloud(sim, operator, driver):
    before = checkpoints(sim)
    run = start_run(operator, "checkpoint-cleanup", {"cloud": "Silver", "older_than_days": "100"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    after = checkpoints(sim)
    silver = {vm["name"] for vm in sim.state()["vms"] if vm["cloud"] == "Silver"}
    assert after["web01"] == [] and after["dc05"] == []  # 292 and 318 days old
    for name in before:
        if name not in silver:
            assert after[name] == before[name], name
    assert run.message.startswith("Removed")


def test_keep_newest_keeps_each_vms_newest(sim, operator, driver):
    run = start_run(operator, "checkpoint-cleanup", {"keep_newest": "1"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    after = checkpoints(sim)
    assert after["build02"] == ["pre-upgrade"]  # the newer of two
    assert after["file06"] == ["pre-upgrade"]
    assert after["web01"] == ["baseline"]  # only one: kept


@pytest.mark.parametrize("params, message", [
    ({"older_than_days": "-1"}, "older_than_days must be at least 0"),
    ({"cloud": "Nowhere", "keep_newest": "1"}, "no cloud named 'Nowhere'"),
    ({"cloud": "Gold"}, "give older_than_days=N or keep_newest=K"),
    ({"keep_newest": "two"}, "keep_newest must be a whole number"),
])
def test_bad_parameters_are_refused(sim, operator, driver, params, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match=message):
        start_run(operator, "checkpoint-cleanup", params)
    assert not Run.objects.exists()
