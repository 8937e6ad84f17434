"""The checkpoint clean-up runbook against the simulated fabric."""
import pytest

from ops.models import Run
from ops.services.runs import RunConflict, start_run

from ._engine_support import driver, events  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def checkpoints(sim, cloud=None):
    return {vm["name"]: vm["checkpoints"] for vm in sim.state()["vms"] if cloud is None or vm["cloud"] == cloud}


def role_id(sim, name):
    return next(r["id"] for r in sim.state()["user_roles"] if r["name"] == name)


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


def test_user_role_limits_the_run_to_that_roles_vms(sim, operator, driver):
    before = sim.state()
    role = role_id(sim, "Fabrikam Dev")
    run = start_run(operator, "checkpoint-cleanup", {"user_role": role.upper(), "older_than_days": "100"})
    assert run.title == "Checkpoint clean-up: all clouds, VMs of user role Fabrikam Dev, older than 100 days"
    fabrikam = {vm["id"] for vm in before["vms"] if vm["user_role"] == "Fabrikam Dev"}
    assert set(run.context["claims"]) == fabrikam
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert f"checkpoints on {len(fabrikam)} VMs of user role Fabrikam Dev; 3 to remove" in " ".join(events(run))
    after = checkpoints(sim)
    assert after["web02"] == [] and after["web06"] == [] and after["web08"] == []  # 385, 201, 323 days
    assert after["dc04"] == ["baseline"] and after["dc06"] == ["baseline"]  # Dev cloud, 129 and 160 days, no role
    changed = {vm["name"] for vm in before["vms"] if after[vm["name"]] != vm["checkpoints"]}
    assert changed == {"web02", "web06", "web08"}


def test_clean_ups_of_two_roles_run_side_by_side_and_two_of_one_role_do_not(sim, operator):
    fabrikam, gold = role_id(sim, "Fabrikam Dev"), role_id(sim, "Contoso Gold")
    for dry_run in ("false", "true"):  # a dry run claims no VM: its conflict key decides
        first = start_run(operator, "checkpoint-cleanup", {"user_role": fabrikam, "keep_newest": "1", "dry_run": dry_run})
        start_run(operator, "checkpoint-cleanup", {"user_role": gold, "keep_newest": "1", "dry_run": dry_run})
        with pytest.raises(RunConflict) as refused:
            start_run(operator, "checkpoint-cleanup", {"user_role": fabrikam, "older_than_days": "9", "dry_run": dry_run})
        assert refused.value.run_id == first.pk
    assert Run.objects.count() == 4


@pytest.mark.parametrize("params, message", [
    ({"user_role": "Fabrikam Dev", "keep_newest": "1"}, "user_role must be a VMM user role ID"),
    ({"user_role": "0badc0de-0000-4000-8000-000000000000", "keep_newest": "1"},
     "user_role: VMM server vmm01 has no user role with the ID 0badc0de-0000-4000-8000-000000000000"),
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
