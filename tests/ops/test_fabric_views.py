"""Fabric pages: every view for every role, what the operator sees, Sync now."""
import pytest
from django.urls import reverse

from ops.inventory.sync import sync_connection
from ops.models import AuditEntry, HostCluster, VirtualMachine, VMHost

pytestmark = pytest.mark.django_db


# Who reaches which page, and that a refusal changes nothing: tests/test_access_matrix.py.


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_staff_see_clusters_hosts_and_vms(client_for, make_user, synced, role):
    c = client_for(make_user("u-" + role, role))
    page = c.get(reverse("ops:clusters")).content.decode()
    for cluster in HostCluster.objects.all():
        assert cluster.name in page
    assert "Standalone hosts" in page
    host = VMHost.objects.filter(cluster__isnull=False).first()
    page = c.get(reverse("ops:host", args=[host.pk])).content.decode()
    for vm in VirtualMachine.objects.filter(host=host):
        assert vm.name in page
    vm = VirtualMachine.objects.filter(checkpoint_count__gt=0).first()
    page = c.get(reverse("ops:vms"), {"q": vm.name}).content.decode()
    assert vm.name in page and "old" in page


@pytest.mark.parametrize("query,text", [
    ({"cluster": "abc"}, "Enter a whole number"),
    ({"host": "9" * 21}, "less than or equal to"),
    ({"cloud": "-1"}, "greater than or equal to 1"),
])
def test_vm_filter_rejects_bad_input_clearly(client_for, operator, synced, query, text):
    resp = client_for(operator).get(reverse("ops:vms"), query)
    page = resp.content.decode()
    assert resp.status_code == 200 and text in page
    assert not resp.context["page"].object_list   # a bad filter never widens the list to every VM


def test_sync_now_of_no_such_connection_syncs_nothing(client_for, operator, synced):
    resp = client_for(operator).post(reverse("ops:sync"), {"connection": "9" * 25}, follow=True)
    assert "No such VMM connection; nothing was synced." in resp.content.decode()


def test_maintenance_shows_after_sync(client_for, operator, synced):
    from ops.fabric import vmm
    from ops.fabric.session import session_for

    s = session_for(synced.vmm)
    host = VMHost.objects.filter(cluster__isnull=False).first()
    vmm.wait_job(s, vmm.disable_host(s, host.name), timeout=60)
    assert sync_connection(synced.vmm).ok
    page = client_for(operator).get(reverse("ops:host", args=[host.pk])).content.decode()
    assert "in maintenance" in page


def test_sync_now_queues_a_task_and_audits(client_for, operator, synced, django_capture_on_commit_callbacks):
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(operator).post(reverse("ops:sync"), {"connection": synced.vmm.pk})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="inventory.sync", username="olga").exists()
    assert broker.queue_size() == 1
    broker.purge_queue()
    page = client_for(operator).get(reverse("ops:clusters")).content.decode()
    assert "Sync queued for vmm01" in page


def test_sync_now_with_unknown_connection_changes_nothing(client_for, operator, synced):
    response = client_for(operator).post(reverse("ops:sync"), {"connection": "999"}, follow=True)
    assert "No such VMM connection" in response.content.decode()
    assert not AuditEntry.objects.filter(action="inventory.sync").exists()


def test_sync_now_ignores_offsite_next(client_for, operator, synced):
    response = client_for(operator).post(reverse("ops:sync"), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("ops:clusters")


def test_an_invalid_vm_filter_lists_nothing_and_says_why(client_for, operator, sim):
    from ops.inventory.sync import sync_connection

    sync_connection(sim.vmm)
    assert VirtualMachine.objects.count() > 0
    c = client_for(operator)
    response = c.get(reverse("ops:vms"), {"q": "no-such-vm-name", "cluster": "abc"})
    page = response.content.decode()
    assert "0 virtual machines" in page
    assert "Filter not applied" in page and "cluster “abc”" in page


def test_inventory_times_under_a_minute_read_just_now(client_for, operator, sim):
    from ops.inventory.sync import sync_connection

    sync_connection(sim.vmm)
    page = client_for(operator).get(reverse("ops:clusters")).content.decode()
    assert "just now" in page and "0 minutes ago" not in page
