"""POST /api/v1/vms/{id}/checkpoint|restore|power/: a tenant acts as the VM page lets them, through the same
service; the run does it on the simulated VMM on their behalf; every refusal names the cause and changes nothing."""
import pytest

from ops.models import AuditEntry, Checkpoint, Run, Subscription

from ..ops._engine_support import driver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _url(vm, what):
    return f"/api/v1/vms/{vm.vmm_id}/{what}/"


def test_alice_checkpoints_through_the_api_and_the_run_replaces_the_old(api, demo, driver):
    vm = demo.vm("app01")  # Gold keeps 1: has 'before-patch-09'
    r = api(demo.alice).post(_url(vm, "checkpoint"), {"name": "api one", "description": "from a script"}, format="json")
    assert r.status_code == 202, r.json()
    body = r.json()
    assert body["url"].endswith(f"/api/v1/runs/{body['run']}/") and "queued" in body["detail"]
    driver.drive()
    run = api(demo.alice).get(body["url"]).json()
    assert run["state"] == "succeeded", run["outcome"]
    assert list(demo.sim.vm("app01")["checkpoints"]) == ["api one"]
    shown = api(demo.alice).get(f"/api/v1/vms/{vm.vmm_id}/").json()["checkpoints"]
    assert [(c["name"], c["description"]) for c in shown] == [("api one", "from a script")]
    assert AuditEntry.objects.filter(action="vm.checkpoint", username="alice", detail__run=body["run"]).exists()


def test_a_checkpoint_without_a_name_gets_the_default_one(api, demo, driver):
    vm = demo.vm("build02")  # Fabrikam Dev keeps 3, has 2
    r = api(demo.carol).post(_url(vm, "checkpoint"), {}, format="json")
    assert r.status_code == 202, r.json()
    driver.drive()
    assert any(n.startswith("build02 20") for n in demo.sim.vm("build02")["checkpoints"])


def test_restore_and_power_through_the_api(api, demo, driver):
    vm = demo.vm("web01")  # Silver: view and restore; start and shut down
    cp = Checkpoint.objects.get(vm=vm, name="baseline")
    r = api(demo.bob).post(_url(vm, "restore"), {"checkpoint": str(cp.vmm_id)}, format="json")
    assert r.status_code == 202, r.json()
    driver.drive()
    assert Run.objects.get(pk=r.json()["run"]).message == "web01 restored to 'baseline'."
    r = api(demo.bob).post(_url(vm, "power"), {"action": "shutdown"}, format="json")
    assert r.status_code == 202, r.json()
    driver.drive()
    assert demo.sim.vm("web01")["status"] == "PowerOff"
    assert demo.vm("web01").status == "PowerOff"  # re-read when the run ended


def test_what_the_plan_does_not_allow_is_a_403_with_the_reason(api, demo):
    vm = demo.vm("web01")  # Silver: no create, no turn off
    r = api(demo.bob).post(_url(vm, "checkpoint"), {"name": "x"}, format="json")
    assert r.status_code == 403 and "checkpoint" in r.json()["detail"].lower()
    r = api(demo.bob).post(_url(vm, "power"), {"action": "stop"}, format="json")
    assert r.status_code == 403 and r.json()["detail"] == "Your plan does not allow 'Turn off' for web01."
    Subscription.objects.filter(name="Contoso Gold").update(state=Subscription.State.SUSPENDED)
    r = api(demo.alice).post(_url(demo.vm("app01"), "checkpoint"), {"name": "x"}, format="json")
    assert r.status_code == 403 and "suspended" in r.json()["detail"]
    r = api(demo.admin).post(_url(vm, "power"), {"action": "start"}, format="json")
    assert r.status_code == 403
    assert not Run.objects.exists()


def test_another_tenants_vm_is_a_404_and_anonymous_a_401(api, demo):
    vm = demo.vm("app01")
    for what, body in (("checkpoint", {"name": "x"}), ("power", {"action": "start"}), ("restore", {"checkpoint": str(vm.vmm_id)})):
        r = api(demo.carol).post(_url(vm, what), body, format="json")
        assert r.status_code == 404 and "that you may see" in r.json()["detail"]
        assert api(None).post(_url(vm, what), body, format="json").status_code == 401
    assert not Run.objects.exists()


def test_a_second_action_is_a_409_naming_the_run(api, demo):
    vm = demo.vm("app03")
    first = api(demo.alice).post(_url(vm, "power"), {"action": "shutdown"}, format="json").json()
    r = api(demo.alice).post(_url(vm, "checkpoint"), {"name": "x"}, format="json")
    assert r.status_code == 409
    body = r.json()
    assert body["run"] == first["run"] and body["run_url"].endswith(f"/api/v1/runs/{first['run']}/")
    assert f"run {first['run']} (Shut down app03) is queued on this VM" in body["detail"]
    assert Run.objects.count() == 1


@pytest.mark.parametrize("what, body, field, message", [
    ("checkpoint", {"name": "x" * 10_000}, "name", "no more than 100"),
    ("checkpoint", {"name": "line\nbreak"}, "name", "U+000A"),
    ("checkpoint", {"name": "evil\u202eexe.txt"}, "name", "U+202E"),
    ("checkpoint", {"name": 5}, "name", "must be a string"),
    ("checkpoint", {"name": "ok", "nmae": "typo"}, "nmae", "unknown field"),
    ("checkpoint", {"name": "ok", "description": "d" * 10_000}, "description", "no more than 1000"),
    ("restore", {}, "checkpoint", "required"),
    ("restore", {"checkpoint": "'; Remove-SCVirtualMachine"}, "checkpoint", "valid UUID"),
    ("restore", {"checkpoint": "00000000-0000-0000-0000-000000000001"}, "checkpoint", "has no checkpoint"),
    ("power", {"action": "reboot"}, "action", "not a valid choice"),
    ("power", {"action": "$(Stop-Computer)"}, "action", "not a valid choice"),
    ("power", {}, "action", "required"),
])
def test_bad_input_is_a_400_naming_the_field(api, demo, what, body, field, message):
    vm = demo.vm("app01")
    r = api(demo.alice).post(_url(vm, what), body, format="json")
    assert r.status_code == 400, r.json()
    errors = r.json()["errors"]
    assert field in errors, errors
    if message:
        assert message in " ".join(errors[field]), errors
    assert not Run.objects.exists()
    assert list(demo.sim.vm("app01")["checkpoints"]) == ["before-patch-09"]
