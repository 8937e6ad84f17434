"""The patch run's hold list (seed 004) through the real pypsrp client against the simulator: the
standalone hosts asked for (hv-s01) and, with non_ha=skip-node, the nodes whose running VMs are not
highly available (hv-b01: web06, hv-b02: app04) go into ConfigMgr's "Hyper-V Hold" collection, read
back there; they are never drained; the rest of CLU-B is patched."""
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ops.fabric import configmgr as cm
from ops.fabric.session import session_for
from ops.models import Run
from ops.runbooks import registry
from ops.services import runs as run_service

from tests.waiting import wait_until

from ._engine_support import driver, events  # noqa: F401 - fixture
from .test_patch_cluster import NODES, Watch, patching, placement  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)
HOLD = "Hyper-V Hold"


def held(configmgr):
    c = session_for(configmgr)
    return sorted(d.name for d in cm.list_devices(c, HOLD))


def test_the_hold_list_goes_to_the_holding_collection_and_is_not_drained(patching, operator, driver, configmgr):
    pf = registry.get("patch-cluster").preview({"cluster": "CLU-B", "non_ha": "skip-node", "hosts": "hv-s01"})
    assert pf.blockers == [] and pf.warnings == []  # nothing is saved, so nothing to confirm
    assert pf.hold_collection == HOLD
    assert pf.hold_text() == ("hv-s01 (standalone host), hv-b01 (not patched: web06 running, not highly available), "
                              "hv-b02 (not patched: app04 running, not highly available)")
    assert [n.split(".")[0] for n in pf.order] == ["hv-b03"]
    assert held(configmgr) == []

    before = placement(patching)
    run = run_service.start_run(operator, "patch-cluster", {"cluster": "CLU-B", "non_ha": "skip-node",
                                                            "hosts": "hv-s01"})
    watch = Watch(patching, run)
    driver.drive(until=watch, rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert watch.seen == {"hv-b03"}, "only the node without running non-HA VMs went into maintenance"
    assert held(configmgr) == ["HV-B01", "HV-B02", "HV-S01"]  # ConfigMgr names devices in capitals
    assert "1 of 1 nodes patched (hv-b03)" in run.message
    assert (f"Hold list (in ConfigMgr collection {HOLD}), patch separately: hv-s01 (standalone host), "
            "hv-b01 (not patched: web06 running, not highly available)") in run.message
    assert placement(patching)["web06"] == before["web06"] == ("hv-b01", "Running")  # its users were never cut off
    log = events(run)
    assert any(f"hv-s01 is in {HOLD} (standalone host): patch it separately" in e for e in log), log


def test_a_host_already_held_is_proven_from_configmgr_and_not_added_again(patching, operator, driver, configmgr):
    c = session_for(configmgr)
    col = cm.get_collection(c, HOLD)
    cm.add_to_collection(c, col.id, cm.get_device(c, "hv-s01.contoso.com"))
    cm.refresh_collection(c, col.id)
    wait_until(lambda: held(configmgr), message="ConfigMgr lists hv-s01 in the hold collection")
    run = run_service.start_run(operator, "patch-cluster", {"cluster": "CLU-B", "hosts": "hv-s01",
                                                            "confirm": "web06,app04"})
    driver.drive(until=lambda: Run.objects.get(pk=run.pk).phase != "holdlist", rests=True, timeout=120)
    log = events(run)
    assert any(f"hv-s01 is in {HOLD} (standalone host)" in e for e in log), log
    assert not any("waiting for collection Hyper-V Hold" in e for e in log), "read, not added again"


@pytest.mark.parametrize("params,expected", [
    ({"hosts": "hv-a01"}, "hosts: hv-a01 is a node of CLU-A, not a standalone host: patch it with cluster=CLU-A"),
    ({"hosts": "nowhere"}, "hosts: VMM has no host named nowhere"),
    ({"hosts": "hv-s01", "hold_collection": "Nope"}, "hold_collection: cm01 has no device collection named Nope"),
    ({"non_ha": "skip-node", "order": "hv-b01,hv-b02"}, "every node of CLU-B runs a VM that is not highly available"),
])
def test_a_bad_hold_list_is_refused_naming_it(patching, operator, params, expected):
    with pytest.raises(ValidationError) as info:
        run_service.start_run(operator, "patch-cluster", {"cluster": "CLU-B", "confirm": "web06,app04", **params})
    assert expected in " ".join(info.value.messages)
    assert not Run.objects.exists()


def test_the_preflight_page_offers_the_hold_list_and_moving_stopped_ha_vms(patching, operator, client_for):
    c = client_for(operator)
    query = {"cluster": "CLU-B", "non_ha": "skip-node", "hosts": "hv-s01", "move_stopped_ha": "true"}
    page = c.get(reverse("ops:patch"), query).content.decode()
    assert f"Hold list: into ConfigMgr collection {HOLD}" in page
    assert '<li data-hold="hv-s01"><strong>hv-s01</strong>: standalone host</li>' in page
    assert "data-confirm-vm" not in page  # nothing will be saved: nothing to confirm
    assert "is moved off" in page and 'name="move_stopped_ha" value="true" checked' in page
    resp = c.post(reverse("ops:patch"), query)
    run = Run.objects.get()
    assert resp.status_code == 302 and resp["Location"] == reverse("ops:run", args=[run.pk])
    assert run.params["move_stopped_ha"] is True and [h["short"] for h in run.params["hold"]] == ["hv-s01", "hv-b01",
                                                                                                    "hv-b02"]
    bad = c.get(reverse("ops:patch"), {**query, "hosts": "hv-a01"})
    assert bad.status_code == 200 and "hv-a01 is a node of CLU-A" in bad.content.decode()
