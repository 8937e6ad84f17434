"""Run and schedule pages, for every role: what each user would see."""
import pytest
from django.test import Client
from django.urls import reverse
from django_q.models import Schedule

from ops.models import AuditEntry, Run, RunEvent, RunSchedule, RunTarget, Step
from ops.views import runforms

pytestmark = pytest.mark.django_db
TASK = "ops.engine.tasks.start_scheduled_run"


def q_schedules():
    return Schedule.objects.filter(func=TASK)


@pytest.fixture
def run(operator):
    r = Run.objects.create(kind="batch-checkpoint", title="Batch checkpoint: batch 3", created_by=operator,
                           state=Run.State.WAITING, progress=40, params={"batch": "3"}, last_seq=2)
    Step.objects.create(run=r, index=0, phase="stop", action="stop-vm", target="app-01", state=Step.State.SUCCEEDED)
    Step.objects.create(run=r, index=1, phase="stop", action="stop-vm", target="app-02", state=Step.State.FAILED,
                        error="VMM server vmm01: Stop-SCVirtualMachine on app-02 failed: boom")
    r.phase = "stop"
    r.save()
    RunEvent.objects.create(run=r, seq=1, message="queued by olga")
    RunEvent.objects.create(run=r, seq=2, message="app-02 failed: boom", level="error", progress=40)
    return r


@pytest.fixture
def sched(operator):
    return RunSchedule.objects.create(name="nightly 3", kind="batch-checkpoint", params={"batch": "3"}, cron="0 2 * * *",
                                      created_by=operator)


def pages(run, sched):
    """(url name, args, method, operator-only?) for every page."""
    step = run.steps.get(index=1)
    return [
        ("ops:runs", [], "get"), ("ops:run_start", [], "get"),
        ("ops:run_cancel", [run.pk], "post"), ("ops:run_step_action", [run.pk, step.pk], "post"),
        ("ops:schedules", [], "get"), ("ops:schedule_new", [], "get"), ("ops:schedule_edit", [sched.pk], "get"),
        ("ops:schedule_toggle", [sched.pk], "post"), ("ops:schedule_delete", [sched.pk], "post"),
    ]


# Who reaches which page, and that a refusal changes nothing: tests/test_access_matrix.py.


def test_a_waiting_run_points_at_its_failed_step(client_for, operator, run):
    page = client_for(operator).get(reverse("ops:run", args=[run.pk])).content.decode()
    failed = run.steps.get(state=Step.State.FAILED)
    assert f'href="#step-{failed.pk}">Go to the failed step and its Retry / Skip / Abort buttons' in page
    run.state = Run.State.FAILED
    run.save()
    page = client_for(operator).get(reverse("ops:run", args=[run.pk])).content.decode()
    assert "data-jump-failed hidden" in page


def test_admin_watches_runs_read_only(client_for, admin_user, tenant, run):
    c = client_for(admin_user)
    listing = c.get(reverse("ops:runs"))
    assert listing.status_code == 200 and "Batch checkpoint: batch 3" in listing.content.decode()
    assert reverse("ops:run_start") not in listing.content.decode()
    detail = c.get(reverse("ops:run", args=[run.pk])).content.decode()
    assert "Waiting for the operator" in detail and "Cancel run" not in detail and 'value="retry"' not in detail
    assert client_for(tenant).get(reverse("ops:runs")).status_code == 403


def test_operator_sees_every_page(client_for, operator, run, sched):
    c = client_for(operator)
    for name, args, method in pages(run, sched):
        if method == "get":
            assert c.get(reverse(name, args=args)).status_code == 200, name
        else:
            assert c.get(reverse(name, args=args)).status_code == 405, name  # changes only by POST
    page = c.get(reverse("ops:run", args=[run.pk])).content.decode()
    assert "app-02 failed: boom" in page and 'data-last-seq="2"' in page and "Stop-SCVirtualMachine on app-02" in page
    assert 'value="retry"' in page and "Cancel run" in page


def test_tenant_sees_only_runs_on_their_subscriptions_vms(client_for, tenant, other_tenant, operator, run, vm_a, vm_b):
    mine = Run.objects.create(kind="vm-checkpoint", created_by=tenant)
    RunTarget.objects.create(run=mine, vm=vm_a)
    batch = Run.objects.create(kind="batch-checkpoint", created_by=operator)  # an operator's run on tina's VM
    RunTarget.objects.create(run=batch, vm=vm_a)
    theirs = Run.objects.create(kind="vm-checkpoint", created_by=other_tenant)
    RunTarget.objects.create(run=theirs, vm=vm_b)
    own_elsewhere = Run.objects.create(kind="vm-checkpoint", created_by=tenant)  # started by tina, on B's VM
    RunTarget.objects.create(run=own_elsewhere, vm=vm_b)
    c = client_for(tenant)
    assert c.get(reverse("ops:run", args=[mine.pk])).status_code == 200
    assert c.get(reverse("ops:run", args=[batch.pk])).status_code == 200
    for other in (theirs, run, own_elsewhere):
        assert c.get(reverse("ops:run", args=[other.pk])).status_code == 404
        assert c.get(reverse("ops:run_events", args=[other.pk])).status_code == 404
    page = c.get(reverse("ops:run", args=[mine.pk])).content.decode()
    assert "Cancel run" not in page and 'value="retry"' not in page  # no operator controls


def test_runs_list_filters_and_pages(client_for, operator, tenant, run):
    for i in range(30):
        Run.objects.create(kind="checkpoint-cleanup", state=Run.State.SUCCEEDED, created_by=tenant, title=f"cleanup {i}")
    c = client_for(operator)
    page = c.get(reverse("ops:runs"), {"kind": "batch-checkpoint"}).content.decode()
    assert "Batch checkpoint: batch 3" in page and "cleanup 1" not in page
    page = c.get(reverse("ops:runs"), {"state": "succeeded", "who": "tina"}).content.decode()
    assert "Page 1 of 2" in page and "Batch checkpoint: batch 3" not in page and "who=tina" in page
    page = c.get(reverse("ops:runs"), {"state": "succeeded", "page": 2}).content.decode()
    assert "cleanup 0" in page and "Page 2 of 2" in page  # history is kept, oldest last
    assert "No runs match" in c.get(reverse("ops:runs"), {"who": "(schedule)"}).content.decode()


@pytest.mark.parametrize("query,text", [
    ({"state": "bogus"}, "No run state is called &#x27;bogus&#x27; (states: queued, running"),
    ({"kind": "nosuch"}, "No runbook is called &#x27;nosuch&#x27;"),
    ({"who": "nobody"}, "Nobody called &#x27;nobody&#x27; has started a run"),
])
def test_runs_list_says_which_filter_matches_nothing(client_for, operator, run, query, text):
    page = client_for(operator).get(reverse("ops:runs"), query).content.decode()
    assert text in page and "No runs match" in page


def test_runs_list_filters_ignore_case(client_for, operator, run):
    page = client_for(operator).get(reverse("ops:runs"), {"state": "WAITING", "who": "OLGA",
                                                          "kind": "Batch-Checkpoint"}).content.decode()
    assert "Batch checkpoint: batch 3" in page and "form-errors" not in page


def test_audit_filter_that_matches_nothing_says_so(client_for, operator, run):
    page = client_for(operator).get(reverse("ops:audit"), {"action": "<b>"}).content.decode()
    assert "No action starts with “&lt;b&gt;”" in page and "<b>" not in page.split("Audit log", 1)[1]


def test_runs_list_bars_carry_their_number(client_for, operator, run):
    Run.objects.filter(pk=run.pk).update(progress=37)
    Run.objects.create(kind="checkpoint-cleanup", state=Run.State.SUCCEEDED, progress=80, title="done one")
    page = client_for(operator).get(reverse("ops:runs")).content.decode()
    assert 'aria-valuenow="37"' in page and '<span class="pct">37%</span>' in page
    assert '<span class="pct">100%</span>' in page  # a succeeded run reads 100 %, whatever was last written


def test_events_endpoint_after_seq(client_for, operator, run):
    c = client_for(operator)
    data = c.get(reverse("ops:run_events", args=[run.pk]), {"after": 1, "format": "json"}).json()
    assert [e["seq"] for e in data["events"]] == [2] and data["last_seq"] == 2
    assert data["run"]["state"] == "waiting" and [s["target"] for s in data["steps"]] == ["app-01", "app-02"]
    html = c.get(reverse("ops:run_events", args=[run.pk]), {"after": 0}).content.decode()
    assert html.count("<li") == 2 and "queued by olga" in html
    bad = c.get(reverse("ops:run_events", args=[run.pk]), {"after": "x", "format": "json"})
    assert bad.status_code == 400 and "non-negative integer" in bad.json()["error"]
    for after in ("\u00b2", "\u0663", "9" * 5000, "-1"):
        bad = c.get(reverse("ops:run_events", args=[run.pk]), {"after": after, "format": "json"})
        assert bad.status_code == 400 and "non-negative integer" in bad.json()["error"]


def test_refusals_quoting_the_request_are_plain_text(client_for, operator, run):
    c = client_for(operator)
    attack = "<img src=x onerror=alert(1)>"
    resp = c.get(reverse("ops:run_events", args=[run.pk]), {"after": attack})
    assert resp.status_code == 400 and resp["Content-Type"].startswith("text/plain")
    step = run.steps.get(index=1)
    resp = c.post(reverse("ops:run_step_action", args=[run.pk, step.pk]), {"action": attack})
    assert resp.status_code == 400 and resp["Content-Type"].startswith("text/plain")
    assert "expected retry, skip, skip-node or abort" in resp.content.decode()
    step.refresh_from_db()
    assert step.state == Step.State.FAILED


def test_step_actions_and_cancel_call_the_services(client_for, operator, run):
    c = client_for(operator)
    step = run.steps.get(index=1)
    url = reverse("ops:run_step_action", args=[run.pk, step.pk])
    assert c.post(url, {"action": "explode"}).status_code == 400
    resp = c.post(url, {"action": "retry"})
    assert resp.status_code == 302 and resp.url == reverse("ops:run", args=[run.pk])
    step.refresh_from_db()
    run.refresh_from_db()
    assert step.state == Step.State.PENDING and run.state == Run.State.RUNNING
    resp = c.post(url, {"action": "skip"}, follow=True)  # no longer failed: refused with the service's message
    assert "only a failed step" in resp.content.decode()
    c.post(reverse("ops:run_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.cancel_requested and AuditEntry.objects.filter(action="run.cancel").exists()


def test_posts_need_the_csrf_token(operator, run):
    c = Client(enforce_csrf_checks=True)
    c.force_login(operator)
    resp = c.post(reverse("ops:run_cancel", args=[run.pk]))
    assert resp.status_code == 403
    assert "This form has expired" in resp.content.decode() and "Nothing was changed" in resp.content.decode()
    run.refresh_from_db()
    assert not run.cancel_requested


def test_a_button_url_opened_with_get_says_how_to_use_it(client_for, operator, run):
    resp = client_for(operator).get(reverse("ops:run_cancel", args=[run.pk]))
    assert resp.status_code == 405 and resp["Allow"] == "POST"
    assert "does not take a GET request" in resp.content.decode() and "use the button" in resp.content.decode()
    run.refresh_from_db()
    assert not run.cancel_requested


# --- starting a run ---------------------------------------------------------------
def test_start_form_is_built_from_the_registry(client_for, operator):
    c = client_for(operator)
    page = c.get(reverse("ops:run_start"), {"kind": "batch-checkpoint"}).content.decode()
    assert 'name="batch"' in page and 'name="cloud"' in page and "Checkpoint clean-up" in page
    page = c.get(reverse("ops:run_start"), {"kind": "checkpoint-cleanup"}).content.decode()
    assert 'name="older_than_days"' in page
    assert c.get(reverse("ops:run_start"), {"kind": "nope"}).status_code == 404


@pytest.mark.parametrize("kind,params,field,text", [
    ("batch-checkpoint", {}, "batch", "This field is required"),
    ("batch-checkpoint", {"batch": "99"}, "batch", "no such batch"),
    ("batch-checkpoint", {"batch": "3", "cloud": "Nowhere"}, "cloud", "no cloud named"),
    ("checkpoint-cleanup", {"older_than_days": "-1"}, "older_than_days", "greater than or equal to 0"),
])
def test_bad_parameters_are_shown_next_to_the_field_and_nothing_starts(sim, client_for, operator, kind, params, field, text):
    resp = client_for(operator).post(reverse("ops:run_start"), {"kind": kind, **params})
    assert resp.status_code == 400
    form = resp.context["form"]
    assert any(text in e for e in form.errors.get(field, [])), form.errors
    assert text in resp.content.decode()
    assert not Run.objects.exists()


def test_several_bad_parameters_are_each_shown_next_to_their_field(sim, client_for, operator):
    resp = client_for(operator).post(reverse("ops:run_start"), {"kind": "batch-checkpoint", "batch": "3",
                                                                "connection": "vmm99", "scom": "scom99"})
    assert resp.status_code == 400
    errors = resp.context["form"].errors
    assert any("no enabled VMM connection is named 'vmm99'" in e for e in errors.get("connection", [])), errors
    assert any("no enabled SCOM connection is named 'scom99'" in e for e in errors.get("scom", [])), errors
    assert not Run.objects.exists()


def test_good_parameters_start_the_run_and_show_its_page(sim, client_for, operator):
    resp = client_for(operator).post(reverse("ops:run_start"), {"kind": "batch-checkpoint", "batch": "3"})
    run = Run.objects.get()
    assert resp.status_code == 302 and resp.url == reverse("ops:run", args=[run.pk])
    assert run.created_by == operator and run.params["batch"] == "3"


# --- schedules ----------------------------------------------------------------------
def test_schedule_create_edit_toggle_delete(sim, client_for, operator):
    c = client_for(operator)
    resp = c.post(reverse("ops:schedule_new"), {"kind": "batch-checkpoint", "name": "nightly 3", "cron": "0 2 * * *",
                                                "p_batch": "3"})
    assert resp.status_code == 302
    sched = RunSchedule.objects.get()
    assert sched.enabled and sched.params["batch"] == "3" and q_schedules().count() == 1
    assert "nightly 3" in c.get(reverse("ops:schedules")).content.decode()
    edit = c.get(reverse("ops:schedule_edit", args=[sched.pk])).content.decode()
    assert 'value="0 2 * * *"' in edit and 'value="3"' in edit
    c.post(reverse("ops:schedule_edit", args=[sched.pk]), {"name": "nightly 3", "cron": "30 4 * * 1", "p_batch": "3"})
    sched.refresh_from_db()
    assert sched.cron == "30 4 * * 1"
    c.post(reverse("ops:schedule_toggle", args=[sched.pk]))
    sched.refresh_from_db()
    assert not sched.enabled and not q_schedules().exists()
    c.post(reverse("ops:schedule_toggle", args=[sched.pk]))
    assert RunSchedule.objects.get().enabled and q_schedules().count() == 1
    c.post(reverse("ops:schedule_delete", args=[sched.pk]))
    assert not RunSchedule.objects.exists() and not q_schedules().exists()


@pytest.mark.parametrize("data,field,text", [
    ({"name": "x", "cron": "every night", "p_batch": "3"}, "cron", "not a valid five-field cron"),
    ({"name": "x", "cron": "61 2 * * *", "p_batch": "3"}, "cron", "not a valid five-field cron"),
    ({"name": "x", "cron": "0 2 30 2 *", "p_batch": "3"}, "cron", "never matches a date"),
    ({"name": "x", "cron": "0 2 * * *", "p_batch": "99"}, "p_batch", "no such batch"),
    ({"name": "", "cron": "0 2 * * *", "p_batch": "3"}, "name", "required"),
])
def test_bad_schedule_input_shows_errors_and_changes_nothing(sim, client_for, operator, data, field, text):
    c = client_for(operator)
    resp = c.post(reverse("ops:schedule_new"), {"kind": "batch-checkpoint", **data})
    assert resp.status_code == 400
    assert any(text in e for e in resp.context["form"].errors.get(field, [])), resp.context["form"].errors
    assert not RunSchedule.objects.exists() and not q_schedules().exists()


def test_bad_schedule_edit_changes_nothing(sim, client_for, operator, sched):
    c = client_for(operator)
    resp = c.post(reverse("ops:schedule_edit", args=[sched.pk]), {"name": "nightly 3", "cron": "0 25 * * *", "p_batch": "3"})
    assert resp.status_code == 400 and "not a valid five-field cron" in resp.content.decode()
    sched.refresh_from_db()
    assert sched.cron == "0 2 * * *"


def test_run_again_fills_the_start_form_with_that_runs_parameters(client_for, operator, run):
    run.state = Run.State.FAILED
    run.params = {"batch": "3", "shutdown": "turnoff", "checkpoint_name": "Before patch {batch}"}
    run.save()
    c = client_for(operator)
    detail = c.get(reverse("ops:run", args=[run.pk])).content.decode()
    assert f"again={run.pk}" in detail and "Run again" in detail
    form = c.get(reverse("ops:run_start"), {"kind": "batch-checkpoint", "again": run.pk}).context["form"]
    assert form["batch"].value() == "3" and form["checkpoint_name"].value() == "Before patch {batch}"
    assert form["shutdown"].value() == "turnoff"
    assert not Run.objects.exclude(pk=run.pk).exists()   # filling the form starts nothing


@pytest.mark.parametrize("again", ["999999", "abc", "-1"])
def test_run_again_of_no_such_run_is_404(client_for, operator, again):
    resp = client_for(operator).get(reverse("ops:run_start"), {"kind": "batch-checkpoint", "again": again})
    assert resp.status_code == 404


def test_run_again_of_another_runbooks_run_is_404(client_for, operator, run):
    resp = client_for(operator).get(reverse("ops:run_start"), {"kind": "checkpoint-cleanup", "again": run.pk})
    assert resp.status_code == 404


def test_an_empty_choice_says_it_means_the_runbook_default():
    rb = runforms.runbook("checkpoint-cleanup")
    field = runforms.param_fields(rb)["on_error"]
    assert field.choices[0] == ("", "— default: Go on with the others, then fail naming it —")
    assert field.initial == "continue"
    undeclared = runforms._field_for({"name": "x", "choices": [("a", "A")]})
    assert undeclared.choices[0] == ("", "— the runbook's default —")


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
