"""The patch-cluster runbook end to end through the real pypsrp client against the simulator
(demo fabric, 100x faster, with VMM, SCOM and ConfigMgr): CLU-B is hv-b01..03; web06 (hv-b01)
and app04 (hv-b02) run and are not highly available, so the drain saves them."""
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ops.fabric import configmgr as cm, scom
from ops.fabric.session import session_for
from ops.inventory.sync import sync_connection
from ops.models import Run, VMHost
from ops.runbooks.patch_cluster import PatchCluster
from ops.services import runs as run_service
from tests.waiting import wait_until

from ._engine_support import driver, events  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)
CONFIRM = "web06,app04"
NODES = ("hv-b01", "hv-b02", "hv-b03")


@pytest.fixture
def patching(sim, configmgr, settings):
    settings.SLIPWAY_PATCH_POLL_SECONDS = 0.1
    settings.SLIPWAY_PATCH_TIMEOUT_SCALE = 0.01   # the simulator runs 100x faster: so do its minutes
    return sim


def placement(sim):
    return {v["name"]: (v["host"].split(".")[0], v["status"]) for v in sim.state()["vms"]
            if v["host"].split(".")[0] in NODES}


def in_maintenance(sim):
    return sorted(h["name"].split(".")[0] for h in sim.state()["hosts"] if h["maintenance"])


def start(operator, **params):
    return run_service.start_run(operator, "patch-cluster", {"cluster": "CLU-B", **params})


class Watch:
    """Looks at the fabric after every engine task: never two nodes of CLU-B in maintenance."""

    def __init__(self, sim, run=None):
        self.sim, self.most, self.run = sim, 0, run
        self.seen, self.progress = set(), []

    def __call__(self):
        now = [n for n in in_maintenance(self.sim) if n in NODES]
        self.most = max(self.most, len(now))
        self.seen.update(now)
        if self.run is not None:
            r = Run.objects.get(pk=self.run.pk)
            self.progress.append((r.phase, r.progress))
        return False


def test_a_patch_run_patches_every_node_and_brings_every_vm_home(patching, operator, driver, configmgr, client_for):
    before = placement(patching)
    run = start(operator, confirm=CONFIRM)
    assert run.params["order"][0].startswith("hv-b03"), "fewest running VMs first"
    watch = Watch(patching, run)
    driver.drive(until=watch, rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert "3 of 3 nodes patched" in run.message
    phases = [p["name"] for p in run.context["engine"]["phases"]]
    for phase, progress in watch.progress:   # the bar says how far through the plan, never further
        if phase in phases:
            assert progress <= 100 * (phases.index(phase) + 1) / len(phases), (phase, progress)
    assert [p for _, p in watch.progress] == sorted(p for _, p in watch.progress) and run.progress == 100
    assert watch.most == 1 and watch.seen == set(NODES), "one node at a time, each of them once"
    assert placement(patching) == before, "every VM back on its own node, in the state it was in"
    c = session_for(configmgr)
    dep = cm.get_deployment(c, name=run.params["deployment"])
    for n in NODES:
        assert cm.pending_updates(c, dep, cm.get_device(c, n + ".contoso.com")) == [], f"{n} is compliant"
    assert cm.list_devices(c, cm.get_collection(c, dep.collection_id).name) == [], "every node left the collection"
    assert all(scom.get_maintenance(session_for(patching.scom), n + ".contoso.com") is None for n in NODES)
    log = events(run)
    assert any("saved (their users are cut off until hv-b01 is back): web06" in e for e in log)
    page = client_for(operator).get(reverse("ops:run", args=[run.pk])).content.decode()
    assert 'id="timeline"' in page and page.count('<g data-node="') == 3
    svg = client_for(operator).get(reverse("ops:run_timeline", args=[run.pk])).content.decode()
    assert svg.count('data-state="succeeded"') >= 3 * 10 and 'data-state="failed"' not in svg
    assert "hv-b01: Drain — succeeded" in svg and "home, verified" in svg


def _settled(c, collection):
    """The collection once no refresh is under way (what ConfigMgr will keep listing)."""
    def done():
        col = cm.get_collection(c, collection)
        return None if col.refreshing else col
    return wait_until(done, message=f"collection {collection} done refreshing")


@pytest.mark.parametrize("when", ["after the first node left", "as the last phase reads the collection"])
def test_a_node_put_back_in_the_collection_after_it_left_is_taken_out_before_the_run_ends(patching, operator, driver,
                                                                                             configmgr, monkeypatch, when):
    """A node's leave asks ConfigMgr to let it go and does not wait; the run's last phase proves from
    ConfigMgr that every node left. Someone re-adding the first node meanwhile does not slip by, even
    when the refresh that takes it back in is still under way as the last phase reads the collection."""
    run = start(operator, confirm=CONFIRM)
    first = run.params["order"][0]
    c = session_for(configmgr)
    dep = cm.get_deployment(c, name=run.params["deployment"])
    readded = []

    def readd():   # someone puts the first node back (the rule and a refresh), once
        if not readded:
            cm.add_to_collection(c, dep.collection_id, cm.get_device(c, first), refresh=True)
            readded.append(first)

    if when.startswith("after"):
        leave = PatchCluster.do_leave

        def leave_then_readd(self, ctx):   # right after the first node's leave, before the run goes on
            out = leave(self, ctx)
            if ctx.data["node"] == first:
                readd()
            return out
        monkeypatch.setattr(PatchCluster, "do_leave", leave_then_readd)
    else:
        left = PatchCluster.do_left

        def readd_then_left(self, ctx):   # every node is out and settled; the refresh that puts one back is not
            if not readded:
                _settled(c, dep.collection_id)
                readd()
            return left(self, ctx)
        monkeypatch.setattr(PatchCluster, "do_left", readd_then_left)

    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert readded and run.state == Run.State.SUCCEEDED, run.message
    col = _settled(c, dep.collection_id)
    assert cm.list_devices(c, col.name) == [], f"{first} is still in {col.name} after the run"
    short = first.split(".")[0]
    waits = [e.split(" to let ", 1)[1] for e in events(run) if e.startswith(f"waiting for collection {col.name} to let ")]
    assert any(short in w.removesuffix(" go").split(", ") for w in waits), events(run)[-40:]
    assert any(e.startswith("ConfigMgr lists none of ") and short in e for e in events(run))


def test_the_vms_the_drain_saves_must_be_confirmed_by_name(patching, operator):
    with pytest.raises(ValidationError) as info:
        start(operator, confirm="web06")
    text = " ".join(info.value.messages)
    assert "app04 on hv-b02 is not highly available: the drain saves it" in text and "FABRIKAM\\carol" in text
    assert "confirm=web06,app04" in text
    assert not Run.objects.exists()


@pytest.mark.parametrize("params,expected", [
    ({"cluster": "CLU-Z"}, "no host cluster is named CLU-Z (clusters: CLU-A, CLU-B)"),
    ({"order": "hv-b01,hv-x9"}, "order: hv-x9 is not a node of CLU-B"),
    ({"max_failed": "0"}, "max_failed must be at least 1"),
    ({"non_ha": "drop"}, "non_ha must be one of save, skip-node"),
    ({"deployment": "Nope; Remove-Item"}, "deployment:"),
    ({"bogus": "1"}, "unknown parameter 'bogus'"),
])
def test_bad_parameters_are_refused_naming_them_and_nothing_starts(patching, operator, params, expected):
    with pytest.raises(ValidationError) as info:
        run_service.start_run(operator, "patch-cluster", {"cluster": "CLU-B", "confirm": CONFIRM, **params})
    assert expected in " ".join(info.value.messages)
    assert not Run.objects.exists()


def test_a_second_patch_run_or_a_batch_checkpoint_of_its_vms_is_refused(patching, operator, driver):
    first = start(operator, confirm=CONFIRM)
    with pytest.raises(ValidationError, match=f"run {first.pk} \\(Patch CLU-B\\) holds CLU-B"):
        start(operator, confirm=CONFIRM)
    with pytest.raises(run_service.RunConflict, match=f"Run {first.pk} \\(Patch CLU-B\\)"):
        run_service.start_run(operator, "batch-checkpoint", {"batch": "1"})
    assert Run.objects.count() == 1


def run_with_a_failed_install(patching, operator, driver):
    """A patch run whose first node's install fails with 0x80070005, driven until it waits for the operator."""
    patching.control({"op": "fault", "cmdlet": "Install-Update", "target": "KB5048661", "mode": "fail",
                      "code": -2147024891})
    run = start(operator, confirm=CONFIRM, order="hv-b01,hv-b02,hv-b03", retries="0")
    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    return run


def test_a_failed_install_waits_for_the_operator_who_skips_the_node(patching, operator, driver):
    before = placement(patching)
    run = run_with_a_failed_install(patching, operator, driver)
    assert run.state == Run.State.WAITING, run.message
    assert "the install on hv-b01 failed" in run.message and "0x80070005" in run.message
    assert in_maintenance(patching) == ["hv-b01"]
    patching.control({"op": "clear_faults"})
    run_service.skip_block(operator, run)
    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert "2 of 3 nodes patched (hv-b02, hv-b03)" in run.message
    assert "hv-b01 skipped by the operator, not patched" in run.message
    assert placement(patching) == before and in_maintenance(patching) == []


def test_a_node_that_comes_back_different_keeps_its_vms_away(patching, operator, driver):
    patching.control({"op": "fault", "cmdlet": "Host-Reboot", "target": "hv-b01", "mode": "lose_adapter",
                      "adapter": "NIC2"})
    run = start(operator, confirm=CONFIRM, order="hv-b01,hv-b02,hv-b03", retries="0")
    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.WAITING, run.message
    assert "hv-b01 came back different: network adapter NIC2 is missing" in run.message
    away = placement(patching)
    assert all(away[vm][0] != "hv-b01" for vm in ("web02", "file02", "web04", "file04")), away
    run_service.skip_block(operator, run)
    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert all(placement(patching)[vm][0] != "hv-b01" for vm in ("web02", "file02")), "its VMs stay away"
    assert any("hv-b01 came back different" in e and "its VMs stay away" in e for e in events(run))


def fabric_flag(client, sim, host_name):
    """What the fabric pages say of a host after a sync: (clusters page, host page) text around the flag."""
    assert sync_connection(sim.vmm).ok
    host = VMHost.objects.get(name__istartswith=host_name + ".")
    return (client.get(reverse("ops:clusters")).content.decode(),
            client.get(reverse("ops:host", args=[host.pk])).content.decode())


def test_a_host_that_does_not_come_back_is_named_in_maintenance_in_the_outcome(patching, operator, driver,
                                                                               client_for):
    patching.control({"op": "fault", "cmdlet": "Host-Reboot", "target": "hv-b03", "mode": "hang"})
    run = start(operator, confirm=CONFIRM, order="hv-b03,hv-b01,hv-b02", reboot_timeout="1")
    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.WAITING, run.message
    assert "host hv-b03 did not come back within 1 min of its restart (VMM: NotResponding" in run.message
    log = list(run.events.order_by("seq").values_list("level", "message"))
    waited = [i for i, (_, m) in enumerate(log) if m.startswith("waiting for hv-b03 to answer again after its restart ")]
    gave_up = [i for i, (_, m) in enumerate(log) if "did not come back" in m]
    assert waited and "(VMM: NotResponding, ConfigMgr: offline; up to 1 min)" in log[waited[0]][1], log[-20:]
    assert gave_up and min(gave_up) > waited[0], "while it waited, the log did not say it had failed"
    assert log[min(gave_up)][0] == "error", log[min(gave_up)]
    clusters, host = fabric_flag(client_for(operator), patching, "hv-b03")
    assert f"being patched by run {run.pk}" in clusters and f"being patched by run {run.pk}" in host
    run_service.abort_run(operator, run)
    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.FAILED
    assert "STILL IN MAINTENANCE: hv-b03" in run.message
    assert in_maintenance(patching) == ["hv-b03"], "no other node was drained"
    clusters, host = fabric_flag(client_for(operator), patching, "hv-b03")
    why = run.context["runbook"]["maintenance:hv-b03"]
    assert why and why in run.message
    left = f"left in maintenance by run {run.pk}: {why}"
    assert left in clusters and left in host and "?kind=host-resume&amp;host=hv-b03.contoso.com" in host
    assert clusters.count("data-maintenance-run") == 1, "only hv-b03 is flagged"


def test_the_command_line_prints_the_preflight_and_starts_only_with_confirm(patching, operator, capsys):
    from django.core.management import CommandError, call_command

    call_command("runbook", "preflight", "patch-cluster", "cluster=CLU-B")
    out = capsys.readouterr().out
    assert "Preflight of CLU-B (order: hv-b03, hv-b02, hv-b01; deployment: 2026-12 Hyper-V Hosts - Patch Window)" in out
    assert "hv-b01: Responding; 8 VMs (7 running, 6 HA to move)" in out and "updates: KB5048661, KB5048811, KB5049614" in out
    assert "WARNING: web06 on hv-b01 is not highly available" in out and "WARNING: app04 on hv-b02" in out
    with pytest.raises(CommandError, match="2 warning\\(s\\) above: nothing was started; run it again with --confirm") as info:
        call_command("runbook", "start", "patch-cluster", "cluster=CLU-B", "--user", "olga")
    assert info.value.returncode == 2 and not Run.objects.exists()
    assert "WARNING: web06" in capsys.readouterr().out, "the warnings are printed before the refusal"
    call_command("runbook", "start", "patch-cluster", "cluster=CLU-B", "--user", "olga", "--confirm")
    run = Run.objects.get()
    assert run.params["confirm"] == ["web06", "app04"] and run.kind == "patch-cluster"
    with pytest.raises(CommandError, match="no host cluster is named CLU-Q") as info:
        call_command("runbook", "preflight", "patch-cluster", "cluster=CLU-Q")
    assert info.value.returncode == 2


def test_the_preflight_page_starts_a_patch_only_with_each_saved_vm_ticked(patching, operator, client_for):
    c = client_for(operator)
    page = c.get(reverse("ops:patch"), {"cluster": "CLU-B"}).content.decode()
    assert "Preflight of CLU-B" in page and 'data-confirm-vm="web06"' in page and 'data-confirm-vm="app04"' in page
    resp = c.post(reverse("ops:patch"), {"cluster": "CLU-B", "confirm": ["web06"]})
    assert resp.status_code == 400 and "app04 on hv-b02 is not highly available" in resp.content.decode()
    assert not Run.objects.exists()
    resp = c.post(reverse("ops:patch"), {"cluster": "CLU-Q'; $(x)"})
    assert resp.status_code == 400 and "no host cluster is named CLU-Q&#x27;; $(x)" in resp.content.decode()
    resp = c.post(reverse("ops:patch"), {"cluster": "CLU-B", "confirm": ["web06", "app04"]})
    run = Run.objects.get()
    assert resp.status_code == 302 and resp["Location"] == reverse("ops:run", args=[run.pk])
    assert run.kind == "patch-cluster" and run.params["confirm"] == ["web06", "app04"]


STOPPED_HA = {"build04": "hv-b03", "app06": "hv-b02", "sql06": "hv-b03"}


class StoppedOnDownNode:
    """After every engine task: the stopped HA VMs found on a node that is down (rebooting)."""

    def __init__(self, sim):
        self.sim, self.found, self.down = sim, set(), set()

    def __call__(self):
        hosts = self.sim.state()["patching"]["hosts"]
        out = {h.split(".")[0] for h, facts in hosts.items() if not facts["responding"]}
        self.down |= out
        self.found.update(vm for vm, (host, _) in placement(self.sim).items() if vm in STOPPED_HA and host in out)
        return False


@pytest.mark.parametrize("move", [False, True])
def test_stopped_ha_vms_leave_a_node_before_it_goes_down_only_when_asked(patching, operator, driver, move):
    before = placement(patching)
    assert {vm: before[vm] for vm in STOPPED_HA} == {vm: (n, "PowerOff") for vm, n in STOPPED_HA.items()}
    run = start(operator, confirm=CONFIRM, move_stopped_ha="yes" if move else "no")
    watch = StoppedOnDownNode(patching)
    driver.drive(until=watch, rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert watch.down == set(NODES), "each node was seen rebooting"
    if move:
        assert watch.found == set(), "no stopped HA VM stays on a node while it reboots"
        log = events(run)
        assert any("Moving sql06 (stopped) off hv-b03 to" in e for e in log)
    else:
        assert watch.found == set(STOPPED_HA), "the drain moves running VMs only: stopped ones stay on the node"
    assert placement(patching) == before, "every VM back on its own node, in the state it was in"


def test_the_inventory_shows_each_node_in_maintenance_from_its_drain_to_its_resume(patching, operator, driver):
    """The dashboard's "Hosts in maintenance" and the fabric page read the inventory: a drained node is
    there at once, not at the next sync, and leaves it when it is resumed."""
    assert sync_connection(patching.vmm).ok
    run = start(operator, confirm=CONFIRM)
    seen = {}

    def look():
        phase = Run.objects.get(pk=run.pk).phase
        stage, _, node = phase.partition("@")
        if stage in ("install", "back", "check"):
            seen.setdefault(node, set()).update(
                h.name.split(".")[0] for h in VMHost.objects.filter(in_maintenance=True))
        return False

    driver.drive(until=look, rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert seen == {n: {n} for n in NODES}, f"while a node is out, the inventory shows it, and only it: {seen}"
    assert not VMHost.objects.filter(in_maintenance=True).exists(), "every node resumed, as the inventory says"
