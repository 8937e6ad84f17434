"""Defects found by driving the demo as a newcomer and a hostile user (QA pass)."""
import socket

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from ops.fabric import errors
from ops.fabric.session import FabricSession, ServerSettings
from ops.models import AuditEntry, ServerConnection, VirtualMachine
from ops.routing import websocket_urlpatterns
from ops.views import runforms

from .test_connections import GOOD

pytestmark = pytest.mark.django_db


# -- connections ---------------------------------------------------------------------

@pytest.mark.parametrize("host", ["http://vmm02.contoso.com", "bad host", "vmm02/wsman", "vmm02:5985", "x;rm -rf", "-vmm"])
def test_a_host_that_is_not_a_name_or_address_is_refused(client_for, admin_user, host):
    response = client_for(admin_user).post(reverse("ops:connection_new"), {**GOOD, "host": host})
    assert response.status_code == 200
    page = response.content.decode()
    assert "is not a host name or IP address" in page and "no scheme (http://)" in page
    assert not ServerConnection.objects.exists()


@pytest.mark.parametrize("host", ["vmm02.contoso.com", "VMM02", "10.0.0.5", "::1", "[fe80::1]", "vmm-02.contoso.com."])
def test_names_and_addresses_are_accepted(client_for, admin_user, host):
    assert client_for(admin_user).post(reverse("ops:connection_new"), {**GOOD, "host": host}).status_code == 302


def test_a_new_connection_does_not_talk_about_keeping_a_password(client_for, admin_user):
    page = client_for(admin_user).get(reverse("ops:connection_new")).content.decode()
    assert "keep the current password" not in page and "never shown again" in page


def test_the_test_button_records_its_outcome_in_the_status_column(client_for, admin_user, sim):
    c = client_for(admin_user)
    assert sim.scom.last_ok_at is None
    c.post(reverse("ops:connection_test", args=[sim.scom.pk]))
    sim.scom.refresh_from_db()
    assert sim.scom.last_ok_at is not None and sim.scom.last_error == ""
    sim.scom.set_password("wrong-password")
    sim.scom.save()
    page = c.post(reverse("ops:connection_test", args=[sim.scom.pk]), follow=True).content.decode()
    sim.scom.refresh_from_db()
    assert "refused the credentials" in sim.scom.last_error
    assert 'class="badge bad"' in page and "not used yet" not in page.split("scom01", 2)[-1].split("</tr>", 1)[0]
    failed = AuditEntry.objects.filter(action="connection.test").order_by("-pk").first()
    assert failed.detail["ok"] is False and "refused the credentials" in failed.detail["error"]


def test_an_unreachable_server_is_named_with_the_cause_not_a_urllib3_repr():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    conn = ServerConnection(name="dead", kind="vmm", host="127.0.0.1", port=port, auth="basic", username="u",
                            operation_timeout=5)
    conn.set_password("p")
    session = FabricSession(ServerSettings.from_connection(conn))
    try:
        with pytest.raises(errors.FabricUnreachable) as info:
            session.run([], cmdlet="Get-SCVMMServer")
    finally:
        session.close()
    text = str(info.value)
    assert f"cannot connect to 127.0.0.1:{port} (Connection refused)" in text
    assert "HTTPConnectionPool" not in text and "Max retries" not in text


# -- fabric pages ---------------------------------------------------------------------

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


# -- run forms ------------------------------------------------------------------------

def test_an_empty_choice_says_it_means_the_runbook_default():
    rb = runforms.runbook("checkpoint-cleanup")
    field = runforms.param_fields(rb)["on_error"]
    assert field.choices[0] == ("", "— default: Go on with the others, then fail naming it —")
    assert field.initial == "continue"
    undeclared = runforms._field_for({"name": "x", "choices": [("a", "A")]})
    assert undeclared.choices[0] == ("", "— the runbook's default —")


# -- websocket ------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/runs/abc/", "/ws/nothing/", "/ws/runs/1/extra/"])
def test_an_unknown_websocket_path_closes_with_4404_not_a_server_error(operator, path):
    async def scenario():
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        comm.scope["user"] = operator
        connected, _ = await comm.connect()
        assert connected
        frame = await comm.receive_json_from(timeout=3)
        assert frame["type"] == "error" and frame["code"] == 4404 and path in frame["message"]
        closed = await comm.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4404}

    async_to_sync(scenario)()


# -- system schedules -------------------------------------------------------------------

def test_the_lease_reaper_is_scheduled_once():
    from django_q.models import Schedule

    from ops.engine.reaper import REAPER_FUNC
    from ops.system_schedules import ensure_system_schedules

    Schedule.objects.create(name="slipway: resume runs whose lease expired", func=REAPER_FUNC,
                            schedule_type=Schedule.MINUTES, minutes=1, repeats=-1)  # what older versions left
    ensure_system_schedules()
    ensure_system_schedules()
    assert Schedule.objects.filter(func=REAPER_FUNC).count() == 1
    assert Schedule.objects.filter(func="ops.inventory.sync.sync_all").count() == 1


# -- run page ---------------------------------------------------------------------------

@pytest.mark.parametrize("state,offered", [("waiting", True), ("failed", False), ("cancelled", False)])
def test_retry_skip_abort_are_offered_only_while_the_run_waits_for_the_operator(client_for, operator, state, offered):
    from ops.models import Run, Step

    run = Run.objects.create(kind="batch-checkpoint", title="Batch checkpoint: batch 3", created_by=operator,
                             state=state, phase="checkpoint")
    step = Step.objects.create(run=run, index=1, phase="checkpoint", action="new-checkpoint", target="sql03",
                               state=Step.State.FAILED, error="VMM server vmm01: New-SCVMCheckpoint on sql03 failed: disk full")
    page = client_for(operator).get(reverse("ops:run", args=[run.pk])).content.decode()
    row = page[page.index(f'id="step-{step.pk}"'):]
    row = row[:row.index("</tr>")]
    assert ('value="retry"' in row) is offered and ('value="skip"' in row) is offered
    assert "disk full" in row


def test_audit_detail_reads_as_key_value_pairs(client_for, admin_user):
    from ops.services import audit as audit_service

    audit_service.record(admin_user, "connection.update", None, fields={"port": 5986, "host": "vmm02"}, password_changed=False)
    page = client_for(admin_user).get(reverse("ops:audit")).content.decode()
    # PostgreSQL's jsonb keeps keys in its own order: check the pairs, not their order
    for pair in ("port=5986", "host=vmm02", "password_changed=False"):
        assert pair in page
    assert "fields={" in page
    assert "{&#x27;" not in page
