"""What tenants click: My VMs, a VM's page, checkpoint / restore / power forms, My activity, per role."""
import pytest
from django.urls import reverse

from ops.models import Checkpoint, Plan, Run, Subscription


def _url(name, vm, **kw):
    return reverse(name, kwargs={"vm_id": vm.vmm_id, **kw})


def _text(resp):
    return resp.content.decode()


def test_my_vms_shows_the_tenants_vms_only(demo, client):
    client.force_login(demo.alice)
    page = _text(client.get(reverse("my_vms")))
    assert "app01" in page and "web01" in page and "Contoso Gold" in page and "Contoso Silver" in page
    assert "web02" not in page and "Fabrikam" not in page  # carol's
    client.force_login(demo.carol)
    page = _text(client.get(reverse("my_vms") + "?q=02"))
    assert "web02" in page and "build02" in page and "app02" not in page  # app02 is Contoso's


def test_my_vms_search_and_filters(demo, client):
    client.force_login(demo.alice)
    page = _text(client.get(reverse("my_vms"), {"subscription": "Contoso Silver", "status": "PowerOff"}))
    assert "test03" in page and "app01" not in page and "web01" not in page
    bad = client.get(reverse("my_vms"), {"status": "Exploded"})
    assert "No VM matches the filter." in _text(bad) and "status:" in _text(bad)


def test_my_vms_queries_do_not_grow_with_vms(demo, client, django_assert_max_num_queries):
    client.force_login(demo.alice)
    client.get(reverse("my_vms"))  # warm the session and role caches
    with django_assert_max_num_queries(8):
        client.get(reverse("my_vms"))


def test_status_endpoint_answers_only_for_visible_vms(demo, client):
    client.force_login(demo.carol)
    mine, theirs = demo.vm("web02"), demo.vm("app01")
    data = client.get(reverse("vm_status"), {"id": [str(mine.vmm_id), str(theirs.vmm_id)]}).json()
    assert data == {"vms": {str(mine.vmm_id): "Running"}}
    bad = client.get(reverse("vm_status"), {"id": "not-a-guid"})
    assert bad.status_code == 400 and "id:" in bad.json()["error"]


def test_gold_vm_page_shows_what_the_plan_allows(demo, client):
    client.force_login(demo.alice)
    vm = demo.vm("app01")
    page = _text(client.get(_url("vm", vm)))
    assert "before-patch-09" in page and "Before monthly patching" in page and "2048 MB" in page
    for button in ("New checkpoint…", "Restore…", ">Start<", ">Shut down<", "Turn off…", ">Save state<"):
        assert button in page, button
    form = _text(client.get(_url("vm_checkpoint", vm)))
    assert "This replaces checkpoint &#x27;before-patch-09&#x27; made " in form
    assert "a restore to it will no longer be possible." in form and "Replace and create checkpoint" in form


def test_silver_vm_page_offers_restore_not_create(demo, client):
    client.force_login(demo.bob)
    vm = demo.vm("web01")
    page = _text(client.get(_url("vm", vm)))
    assert "Restore…" in page and "New checkpoint…" not in page and "Delete…" not in page
    assert ">Start<" in page and ">Shut down<" in page and "Turn off" not in page and "Save state" not in page
    assert client.get(_url("vm_checkpoint", vm)).status_code == 403
    resp = client.post(_url("vm_checkpoint", vm), {"name": "x"})
    assert resp.status_code == 403 and not Run.objects.exists()
    assert client.post(_url("vm_power", vm), {"action": "stop", "confirmed": "yes"}).status_code == 403
    assert not Run.objects.exists()


def test_dev_vm_shows_expiry_under_the_plans_max_age(demo, client):
    client.force_login(demo.carol)
    vm = demo.vm("build02")
    page = _text(client.get(_url("vm", vm)))
    cp = Checkpoint.objects.get(vm=vm, name="pre-upgrade")
    expiry = (cp.added_at + __import__("datetime").timedelta(days=14)).strftime("%Y-%m-%d")
    assert "Expires" in page and expiry in page and "each expires 14 days after it was made" in page


@pytest.mark.parametrize("name, post", [
    ("vm", 405), ("vm_checkpoints", 405), ("vm_checkpoint", 404), ("vm_restore", 404), ("vm_power", 404),
])
def test_another_tenants_vm_is_404_never_403(demo, client, name, post):
    client.force_login(demo.carol)
    vm = demo.vm("app01")
    assert client.get(_url(name, vm)).status_code == 404
    assert client.post(_url(name, vm), {"name": "x", "action": "start", "confirmed": "yes"}).status_code == post
    cp = Checkpoint.objects.get(vm=vm)
    assert client.get(_url("vm_checkpoint_delete", vm, checkpoint_id=cp.vmm_id)).status_code == 404
    assert not Run.objects.exists()


def test_suspended_subscription_views_but_does_not_act(demo, client):
    Subscription.objects.filter(name="Contoso Gold").update(state=Subscription.State.SUSPENDED)
    client.force_login(demo.alice)
    vm = demo.vm("app01")
    page = _text(client.get(_url("vm", vm)))
    assert "subscription suspended: view only" in page and "before-patch-09" in page
    assert "New checkpoint…" not in page and "Restore…" not in page and ">Start<" not in page
    assert client.post(_url("vm_checkpoint", vm), {"name": "x"}).status_code == 403
    cp = Checkpoint.objects.get(vm=vm)
    assert client.post(_url("vm_restore", vm), {"checkpoint": cp.vmm_id, "confirmed": "true"}).status_code == 403
    assert client.post(_url("vm_power", vm), {"action": "start"}).status_code == 403
    assert not Run.objects.exists()


@pytest.mark.parametrize("permission, create, restore", [
    ("none", False, False), ("view_restore", False, True), ("create_view_restore", True, True)])
def test_plan_permission_decides_buttons_and_posts(demo, client, permission, create, restore):
    Plan.objects.filter(name="Contoso Gold").update(checkpoint_permission=permission)
    client.force_login(demo.alice)
    vm = demo.vm("app01")
    page = _text(client.get(_url("vm", vm)))
    assert ("New checkpoint…" in page) is create and ("Restore…" in page) is restore
    cp = Checkpoint.objects.get(vm=vm)
    if not create:
        assert client.post(_url("vm_checkpoint", vm), {"name": "x"}).status_code == 403
        assert client.post(_url("vm_checkpoint_delete", vm, checkpoint_id=cp.vmm_id)).status_code == 403
    if not restore:
        assert client.get(_url("vm_restore", vm) + f"?checkpoint={cp.vmm_id}").status_code == 403
        assert client.post(_url("vm_restore", vm), {"checkpoint": cp.vmm_id, "confirmed": "true"}).status_code == 403
    assert not Run.objects.exists()


@pytest.mark.parametrize("name, message", [
    ("", "This field is required."),
    ("x" * 10_000, "at most 100 characters"),
    ("two\nlines", "U+000A"),
    ("abc\u200fdef", "U+200F RIGHT-TO-LEFT MARK"),
])
def test_bad_checkpoint_names_are_refused_on_the_form(demo, client, name, message):
    client.force_login(demo.alice)
    vm = demo.vm("app01")
    resp = client.post(_url("vm_checkpoint", vm), {"name": name, "description": "d"})
    assert resp.status_code == 400 and message in _text(resp)
    assert not Run.objects.exists()


@pytest.mark.parametrize("description, message", [
    ("d" * 10_000, "at most 1000 characters"), ("hidden \u202e override", "U+202E RIGHT-TO-LEFT OVERRIDE")])
def test_bad_descriptions_are_refused_on_the_form(demo, client, description, message):
    client.force_login(demo.alice)
    resp = client.post(_url("vm_checkpoint", demo.vm("app01")), {"name": "ok", "description": description})
    assert resp.status_code == 400 and message in _text(resp)
    assert not Run.objects.exists()


def test_checkpoint_post_starts_a_run_shown_live_on_the_vm_page(demo, client):
    client.force_login(demo.alice)
    vm = demo.vm("app01")
    resp = client.post(_url("vm_checkpoint", vm), {"name": "it's $(x); y", "description": "before"})
    assert resp.status_code == 302 and resp["Location"] == _url("vm", vm)
    run = Run.objects.get()
    assert run.kind == "vm-checkpoint" and run.params["user"] == "CONTOSO\\alice"
    page = _text(client.get(_url("vm", vm)))
    assert f'data-ws-path="/ws/runs/{run.pk}/"' in page and "run-live.js" in page and "vm-page.js" in page
    assert "Checkpoint app01: it&#x27;s $(x); y" in page
    # a second action while it is queued is refused naming the run
    again = client.post(_url("vm_checkpoint", vm), {"name": "again"})
    assert again.status_code == 409 and f"run {run.pk} (Checkpoint app01" in _text(again)  # as the API answers
    assert Run.objects.count() == 1
    assert f"Run {run.pk}" in _text(client.get(reverse("activity"))) or str(run.pk) in _text(client.get(reverse("activity")))


def test_restore_confirmation_page(demo, client):
    client.force_login(demo.alice)
    vm = demo.vm("app01")
    cp = Checkpoint.objects.get(vm=vm)
    choose = _text(client.get(_url("vm_restore", vm)))
    assert "before-patch-09" in choose and 'name="checkpoint"' in choose
    confirm = _text(client.get(_url("vm_restore", vm), {"checkpoint": cp.vmm_id}))
    assert "before-patch-09" in confirm and "Before monthly patching" in confirm and cp.added_at.strftime("%Y-%m-%d %H:%M") in confirm
    assert "is lost." in confirm and "restart from that point" in confirm and "Checkpoint the VM first" in confirm
    assert not Run.objects.exists()  # the confirmation page changes nothing
    unknown = client.get(_url("vm_restore", vm), {"checkpoint": "00000000-0000-4000-8000-000000000000"})
    assert unknown.status_code == 400 and "not a checkpoint of this VM" in _text(unknown)
    resp = client.post(_url("vm_restore", vm), {"checkpoint": cp.vmm_id, "confirmed": "true"})
    assert resp.status_code == 302
    assert Run.objects.get().kind == "vm-restore"


def test_turn_off_asks_first(demo, client):
    client.force_login(demo.alice)
    vm = demo.vm("app03")
    confirm = client.get(_url("vm_power", vm), {"action": "stop"})
    assert confirm.status_code == 200 and "Turning off cuts the power" in _text(confirm)
    assert client.post(_url("vm_power", vm), {"action": "stop"}).status_code == 200  # not confirmed: asks again
    assert not Run.objects.exists()
    assert client.post(_url("vm_power", vm), {"action": "explode"}).status_code == 400
    assert client.post(_url("vm_power", vm), {"action": "stop", "confirmed": "yes"}).status_code == 302
    assert Run.objects.get().params["action"] == "stop"


def test_tenant_home_is_my_vms(demo, client):
    client.force_login(demo.alice)
    assert client.get("/")["Location"] == reverse("my_vms")
