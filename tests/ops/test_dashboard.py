"""The operator's daily view (issue 10 §5): the dashboard at `/`, and every object linked."""
import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from ops.models import AuditEntry, Checkpoint, Cloud, Run, RunSchedule, ServerConnection, Step, SyncRecord, VirtualMachine, VMHost

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn(db):
    c = ServerConnection(name="vmm01", kind="vmm", host="vmm01.lab", username="svc")
    c.set_password("x")
    c.save()
    return c


@pytest.fixture
def fabric(conn):
    cloud = Cloud.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="Gold")
    host = VMHost.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="hv03", in_maintenance=True)
    vm = VirtualMachine.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="app01", host=host, cloud=cloud,
                                       status="Running", custom={"Custom1": "3"})
    VirtualMachine.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="app02", host=host, custom={"Custom1": "3"})
    VirtualMachine.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="db01", host=host, custom={"Custom1": "4"})
    Checkpoint.objects.create(vm=vm, vmm_id=uuid.uuid4(), name="Batch 3 old", added_at=timezone.now() - dt.timedelta(days=40))
    Checkpoint.objects.create(vm=vm, vmm_id=uuid.uuid4(), name="Batch 3 new", added_at=timezone.now())
    return vm, host, cloud


def section(page: str, dom_id: str) -> str:
    part = page[page.index(f'id="{dom_id}"'):]
    return part[:part.index("</section>")]


def make_run(conn, user, state, title, **kw):
    return Run.objects.create(kind="batch-checkpoint", title=title, state=state, connection=conn, created_by=user,
                              params={"batch": "3", "property": "Custom1"}, **kw)


def test_the_dashboard_shows_what_needs_the_operator_each_item_linked(client_for, operator, admin_user, conn, fabric):
    vm, host, _ = fabric
    under_way = make_run(conn, operator, Run.State.RUNNING, "Batch checkpoint: batch 3", progress=40)
    waiting = make_run(conn, operator, Run.State.WAITING, "Batch checkpoint: batch 4", message="Waiting for the operator: 1 step failed")
    failed = make_run(conn, operator, Run.State.FAILED, "Batch checkpoint: batch 5", message="app09 failed: boom",
                      finished_at=timezone.now() - dt.timedelta(days=2))
    old = make_run(conn, operator, Run.State.FAILED, "Batch checkpoint: batch 6", finished_at=timezone.now() - dt.timedelta(days=9))
    drain = make_run(conn, operator, Run.State.SUCCEEDED, "Patch run: cluster A")
    Step.objects.create(run=drain, index=0, phase="drain", action="disable-host", target="hv03", target_id=str(host.vmm_id))
    ServerConnection.record_use(conn.pk, "VMM server vmm01: connection refused")
    SyncRecord.objects.create(connection=conn, ok=True, finished_at=timezone.now() - dt.timedelta(hours=2))

    for user in (operator, admin_user):
        page = client_for(user).get(reverse("home")).content.decode()
        assert section(page, "dash-under-way").count(reverse("ops:run", args=[under_way.pk])) == 1
        assert "40%" in section(page, "dash-under-way")
        assert reverse("ops:run", args=[waiting.pk]) in section(page, "dash-waiting")
        failed_card = section(page, "dash-failed")
        assert reverse("ops:run", args=[failed.pk]) in failed_card and "app09 failed: boom" in failed_card
        assert f"Run {old.pk} " not in failed_card   # older than 7 days
        hosts = section(page, "dash-hosts")
        assert reverse("ops:host", args=[host.pk]) in hosts and reverse("ops:run", args=[drain.pk]) in hosts
        conns = section(page, "dash-connections")
        assert "connection refused" in conns and "failed just now" in conns
        assert (reverse("ops:connection_edit", args=[conn.pk]) in conns) == (user == admin_user)
        inventory = section(page, "dash-inventory")
        assert "read 2\xa0hours ago" in inventory and ">stale<" in inventory
    # live while runs are under way: htmx asks for the body again
    assert 'hx-trigger="every 5s"' in page
    body = client_for(operator).get(reverse("home"), HTTP_HX_REQUEST="true").content.decode()
    assert 'id="dashboard"' in body and "<html" not in body


def test_a_quiet_day_says_nothing_needs_the_operator(client_for, operator, conn):
    ServerConnection.record_use(conn.pk)
    SyncRecord.objects.create(connection=conn, ok=True, finished_at=timezone.now())
    page = client_for(operator).get(reverse("home")).content.decode()
    assert "Nothing needs you" in page and 'hx-trigger="every 5s"' not in page


def test_a_connection_that_works_again_leaves_the_dashboard(client_for, operator, conn):
    ServerConnection.record_use(conn.pk, "VMM server vmm01: timed out")
    assert "timed out" in client_for(operator).get(reverse("home")).content.decode()
    ServerConnection.record_use(conn.pk)
    conn.refresh_from_db()
    assert conn.last_error == "" and conn.last_error_at is None and conn.last_ok_at is not None
    assert "timed out" not in client_for(operator).get(reverse("home")).content.decode()


def test_tenants_keep_their_home(client_for, tenant):
    response = client_for(tenant).get(reverse("home"), follow=True)   # tenants go on to My VMs
    page = response.content.decode()
    assert "<h1>My VMs" in page and 'id="dashboard"' not in page


# --- the VM page ---------------------------------------------------------------------
def test_the_vm_page_shows_facts_checkpoints_with_age_runs_and_batch(client_for, operator, admin_user, tenant, conn, fabric):
    vm, host, cloud = fabric
    run = make_run(conn, operator, Run.State.SUCCEEDED, "Batch checkpoint: batch 3")
    Step.objects.create(run=run, index=0, phase="checkpoint", action="new-checkpoint", target="app01",
                        target_id=str(vm.vmm_id).upper())
    other = make_run(conn, operator, Run.State.SUCCEEDED, "Batch checkpoint: batch 4")
    Step.objects.create(run=other, index=0, phase="checkpoint", action="new-checkpoint", target="db01", target_id=str(uuid.uuid4()))
    url = reverse("ops:vm", args=[vm.pk])
    for user in (operator, admin_user):
        page = client_for(user).get(url).content.decode()
        assert reverse("ops:host", args=[host.pk]) in page and "Gold" in page and "Running" in page
        assert "Batch 3 old" in page and "40 days" in page and "today" in page
        assert reverse("ops:run", args=[run.pk]) in page and reverse("ops:run", args=[other.pk]) not in page
        assert "?batch=3&amp;property=Custom1" in page and "2 VMs in it" in page
    assert client_for(tenant).get(url).status_code == 403
    assert client_for(operator).get(reverse("ops:vm", args=[999999])).status_code == 404
    # the batch link lists the batch
    listing = client_for(operator).get(reverse("ops:vms"), {"batch": "3", "property": "Custom1"}).content.decode()
    assert "app01" in listing and "app02" in listing and "db01" not in listing
    assert reverse("ops:vm", args=[vm.pk]) in listing   # the VM list links each VM


def test_a_bad_batch_property_filter_lists_nothing_and_says_why(client_for, operator, fabric):
    page = client_for(operator).get(reverse("ops:vms"), {"batch": "3", "property": "Custom1; drop"}).content.decode()
    assert "Filter not applied" in page and "app01" not in page


# --- links from the audit log and the runs list ------------------------------------------
def test_audit_entries_link_their_objects_for_whoever_may_open_them(client_for, operator, admin_user, conn, fabric):
    from ops.services import audit

    run = make_run(conn, operator, Run.State.SUCCEEDED, "Batch checkpoint: batch 3")
    step = Step.objects.create(run=run, index=4, phase="stop", action="stop-vm", target="app01")
    sched = RunSchedule.objects.create(name="Nightly", kind="batch-checkpoint", cron="0 2 * * *")
    for obj in (run, step, sched, conn, fabric[0]):
        audit.record(operator, "x.test", obj)
    gone = RunSchedule.objects.create(name="Gone", kind="batch-checkpoint", cron="0 2 * * *")
    audit.record(operator, "schedule.delete", gone)
    gone_pk = gone.pk
    gone.delete()
    op = client_for(operator).get(reverse("ops:audit")).content.decode()
    assert f'href="{reverse("ops:run", args=[run.pk])}"' in op
    assert f'href="{reverse("ops:run", args=[run.pk])}#step-{step.pk}"' in op
    assert f'href="{reverse("ops:schedules")}#schedule-{sched.pk}"' in op
    assert f'href="{reverse("ops:vm", args=[fabric[0].pk])}"' in op
    assert reverse("ops:connection_edit", args=[conn.pk]) not in op   # an operator may not open connections
    assert f"#schedule-{gone_pk}" not in op and "Gone" in op        # named, not linked: it is deleted
    admin = client_for(admin_user).get(reverse("ops:audit")).content.decode()
    assert reverse("ops:connection_edit", args=[conn.pk]) in admin
    assert AuditEntry.objects.count() == 6


def test_the_runs_list_links_each_runs_targets(client_for, operator, conn, fabric):
    run = make_run(conn, operator, Run.State.SUCCEEDED, "Batch checkpoint: batch 3")
    clean = Run.objects.create(kind="checkpoint-cleanup", title="Clean-up Gold", connection=conn, created_by=operator,
                               params={"cloud": "gold", "older_than_days": 30})
    page = client_for(operator).get(reverse("ops:runs")).content.decode()
    assert f'{reverse("ops:vms")}?batch=3&amp;property=Custom1">batch 3</a>' in page
    assert f'{reverse("ops:vms")}?cloud={fabric[2].pk}">cloud gold</a>' in page
    assert run.pk and clean.pk


def test_the_who_filter_lists_each_person_once(client_for, operator, tenant):
    for _ in range(3):
        Run.objects.create(kind="batch-checkpoint", created_by=operator)
    Run.objects.create(kind="batch-checkpoint", created_by=tenant)
    page = client_for(operator).get(reverse("ops:runs")).content.decode()
    who = page[page.index('name="who"'):]
    who = who[:who.index("</select>")]
    assert who.count('<option value="olga"') == 1 and who.count('<option value="tina"') == 1
