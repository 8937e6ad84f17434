"""host-resume (ops/runbooks/host_resume.py) through the real pypsrp client against the simulator:
the way out for a node left in maintenance by a run Slipway no longer knows (a fresh database over
a half-patched fabric), made here by draining hv-b03 straight through VMM, SCOM and ConfigMgr."""
import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from ops.fabric import configmgr as cm, scom, vmm, vmm_hosts
from ops.fabric.session import session_for
from ops.inventory.sync import sync_connection
from ops.models import Run, VMHost
from ops.services import runs as run_service
from tests.waiting import wait_until

from ._engine_support import driver, events  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)
NODE = "hv-b03.contoso.com"


@pytest.fixture
def left_behind(sim, configmgr, settings):
    """hv-b03 as a lost patch run leaves it: drained, in SCOM maintenance, in the deployment's collection."""
    settings.SLIPWAY_PATCH_POLL_SECONDS = 0.1
    v, cs, ss = session_for(sim.vmm), session_for(configmgr), session_for(sim.scom)
    assert vmm.wait_job(v, vmm.disable_host(v, NODE), timeout=60).succeeded
    scom.start_maintenance(ss, NODE, dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=4),
                           "PlannedOperatingSystemReconfiguration", "a patch run")
    dep = only_deployment(cs)
    cm.add_to_collection(cs, dep.collection_id, cm.get_device(cs, NODE), refresh=True)
    wait_until(lambda: listed(cs, dep), timeout=60, message="hv-b03 in the deployment's collection")
    assert sync_connection(sim.vmm).ok
    return sim


def only_deployment(cs):
    [dep] = [d for d in cm.list_deployments(cs) if d.enabled]
    return dep


def listed(cs, dep):
    return cm.get_device(cs, NODE).resource_id in {d.resource_id for d in cm.list_devices(cs, dep.collection_id)}


def in_maintenance(sim):
    return sorted(h["name"].split(".")[0] for h in sim.state()["hosts"] if h["maintenance"])


def resume(operator, **params):
    return run_service.start_run(operator, "host-resume", {"host": "hv-b03", **params})


def test_a_node_left_in_maintenance_is_resumed_and_tidied_so_its_cluster_can_be_patched_again(
        left_behind, operator, driver, configmgr, client_for):
    way_out = r"node hv-b03 is already in maintenance: find out why, then resume it first \(runbook host-resume host=hv-b03"
    with pytest.raises(ValidationError, match=way_out):
        run_service.start_run(operator, "patch-cluster", {"cluster": "CLU-B"})
    host = VMHost.objects.get(name=NODE)
    page = client_for(operator).get(reverse("ops:host", args=[host.pk])).content.decode()
    link = f'{reverse("ops:run_start")}?kind=host-resume&amp;host={NODE}'
    assert link in page, "the host page offers the way out"
    dash = client_for(operator).get(reverse("home")).content.decode()
    assert "no run Slipway has on record put it there" in dash and link in dash, "so does the dashboard"

    run = resume(operator)
    assert run.params["host"] == NODE and run.context["holds"] == ["cluster:CLU-B", f"host:{NODE}"]
    driver.drive(rests=True, timeout=120)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert run.message.startswith("hv-b03 resumed from maintenance (SCOM maintenance ended; ConfigMgr lists it in "
                                  "Hyper-V Patch Window no more).")
    assert "stay where they are" in run.message, "it says the VMs were not brought back"
    assert in_maintenance(left_behind) == []
    assert not VMHost.objects.get(pk=host.pk).in_maintenance, "the inventory shows it at once"
    assert "No host is in maintenance mode." in client_for(operator).get(reverse("home")).content.decode()
    assert scom.get_maintenance(session_for(left_behind.scom), NODE) is None
    cs = session_for(configmgr)
    assert not listed(cs, only_deployment(cs)), "ConfigMgr no longer targets it outside a patch run"
    assert any(e.startswith("hv-b03: SCOM maintenance ended") for e in events(run)), events(run)
    # the cluster can be patched again: its preflight has no blocker left
    assert run_service.prepare("patch-cluster", {"cluster": "CLU-B", "confirm": "web06,app04"})[1].params["order"]


def test_a_resume_is_refused_with_its_reason_and_starts_nothing(left_behind, operator):
    cases = [({"host": "hv-b01"}, "hv-b01 is not in maintenance in VMM server vmm01"),
             ({"host": "hv-zz9"}, "no host named 'hv-zz9' in Slipway's inventory (in maintenance: hv-b03"),
             ({"host": ""}, "host is required"),
             ({"host": "hv-b03", "deployment": "Nope"}, "no enabled software update deployment named 'Nope'"),
             ({"host": "hv-b03", "scom": "scom99"}, "scom: no enabled SCOM connection is named 'scom99'"),
             ({"host": "hv-b03", "colour": "red"}, "unknown parameter 'colour' for host-resume")]
    for params, why in cases:
        with pytest.raises(ValidationError) as exc:
            run_service.start_run(operator, "host-resume", params)
        assert why in str(exc.value), (params, str(exc.value))
    assert not Run.objects.exists()
    assert in_maintenance(left_behind) == ["hv-b03"], "nothing was touched"


def test_a_host_that_does_not_answer_is_not_resumed_and_the_run_says_so(left_behind, operator, driver):
    left_behind.control({"op": "fault", "cmdlet": "Host-Reboot", "target": "hv-b03", "mode": "hang"})
    v = session_for(left_behind.vmm)
    assert vmm.wait_job(v, vmm_hosts.restart_host(v, NODE), timeout=60).succeeded
    run = resume(operator)
    driver.drive(rests=True, timeout=120)
    run.refresh_from_db()
    assert run.state == Run.State.WAITING, run.message
    assert "VMM server vmm01: cannot resume hv-b03: it is NotResponding; it stays in maintenance" in run.message
    run_service.abort_run(operator, run)
    driver.drive(rests=True, timeout=120)
    run.refresh_from_db()
    assert run.state == Run.State.FAILED and "hv-b03 was not resumed" in run.message, run.message
    assert in_maintenance(left_behind) == ["hv-b03"]


def test_no_resume_runs_beside_a_patch_run_of_its_cluster(sim, configmgr, operator, settings):
    settings.SLIPWAY_PATCH_POLL_SECONDS = 0.1
    assert sync_connection(sim.vmm).ok
    patch = run_service.start_run(operator, "patch-cluster", {"cluster": "CLU-B", "confirm": "web06,app04"})
    with pytest.raises(ValidationError) as exc:
        run_service.start_run(operator, "host-resume", {"host": "hv-b02"})
    assert "not in maintenance" in str(exc.value)
    v = session_for(sim.vmm)
    assert vmm.wait_job(v, vmm.disable_host(v, "hv-b02.contoso.com"), timeout=60).succeeded
    with pytest.raises(ValidationError) as exc:
        run_service.start_run(operator, "host-resume", {"host": "hv-b02"})
    assert f"Run {patch.pk} (Patch CLU-B) is still queued and holds CLU-B" in str(exc.value)


def test_the_host_page_s_link_opens_the_start_form_filled_in_with_each_field_s_own_help(left_behind, operator,
                                                                                        client_for):
    page = client_for(operator).get(reverse("ops:run_start"), {"kind": "host-resume", "host": NODE}).content.decode()
    assert f'value="{NODE}"' in page
    assert "Ends the host&#x27;s SCOM maintenance mode" in page, "not the batch runbook's words for SCOM"
    batch = client_for(operator).get(reverse("ops:run_start"), {"kind": "batch-checkpoint"}).content.decode()
    assert "Puts the running VMs into SCOM maintenance mode while they are down" in batch


def test_the_command_line_resumes_it_and_follows_the_run_to_its_outcome(left_behind, operator, driver, capsys):
    call_command("runbook", "start", "host-resume", "host=hv-b03", "--user", "olga")
    run = Run.objects.get()
    assert f"run {run.pk} queued: Resume hv-b03" in capsys.readouterr().out
    driver.drive(rests=True, timeout=120)
    call_command("runbook", "follow", str(run.pk), "--poll", "0.05")
    out = capsys.readouterr().out
    assert f"run {run.pk} succeeded: hv-b03 resumed from maintenance (SCOM maintenance ended" in out, out[-600:]
    assert in_maintenance(left_behind) == []
    with pytest.raises(CommandError, match="hv-b03 is not in maintenance in VMM server vmm01"):
        call_command("runbook", "start", "host-resume", "host=hv-b03", "--user", "olga")
    assert Run.objects.count() == 1


def test_a_host_drained_by_hand_is_said_to_be_outside_the_collection_not_taken_out_of_it(sim, configmgr, operator,
                                                                                           driver, settings):
    settings.SLIPWAY_PATCH_POLL_SECONDS = 0.1
    v = session_for(sim.vmm)
    assert vmm.wait_job(v, vmm.disable_host(v, "hv-b02.contoso.com"), timeout=60).succeeded
    assert sync_connection(sim.vmm).ok
    run = run_service.start_run(operator, "host-resume", {"host": "hv-b02"})
    driver.drive(rests=True, timeout=120)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert run.message.startswith("hv-b02 resumed from maintenance (SCOM maintenance was not on; ConfigMgr does not "
                                  "list it in Hyper-V Patch Window)."), run.message
