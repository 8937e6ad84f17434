"""/api/v1/runs/ and /api/v1/runbooks/ for every role: what each user gets, and that a refusal
names its cause and changes nothing."""
import pytest

from ops.models import AuditEntry, Run, RunEvent, RunTarget, Step
from tests.ops._engine_support import Driver

pytestmark = pytest.mark.django_db
RUNS = "/api/v1/runs/"


@pytest.fixture
def run(operator):
    """A batch run waiting for the operator: step 0 succeeded, step 1 failed."""
    r = Run.objects.create(kind="batch-checkpoint", title="Batch checkpoint: batch 3", created_by=operator,
                           state=Run.State.WAITING, progress=40, params={"batch": "3"}, last_seq=2, phase="stop",
                           message="Step 'stop-vm app-02' failed; waiting for the operator")
    Step.objects.create(run=r, index=0, phase="stop", action="stop-vm", target="app-01", state=Step.State.SUCCEEDED)
    Step.objects.create(run=r, index=1, phase="stop", action="stop-vm", target="app-02", state=Step.State.FAILED,
                        error="VMM server vmm01: Stop-SCVirtualMachine on app-02 failed: boom")
    RunEvent.objects.create(run=r, seq=1, message="queued by olga")
    RunEvent.objects.create(run=r, seq=2, message="app-02 failed: boom", level="error", progress=40)
    return r


def snapshot():
    """What a refused request must leave as it was."""
    return (list(Run.objects.order_by("pk").values("pk", "state", "cancel_requested", "message", "context")),
            list(Step.objects.order_by("pk").values("pk", "state", "error")),
            RunEvent.objects.count(), AuditEntry.objects.count())


def endpoints(run):
    return [("get", RUNS, None), ("get", f"{RUNS}{run.pk}/", None), ("get", f"{RUNS}{run.pk}/events/", None),
            ("post", RUNS, {"runbook": "batch-checkpoint", "params": {"batch": "3"}}),
            ("post", f"{RUNS}{run.pk}/cancel/", {}), ("post", f"{RUNS}{run.pk}/abort/", {}),
            ("post", f"{RUNS}{run.pk}/retry/", {"step": 1}), ("post", f"{RUNS}{run.pk}/skip/", {"step": 1}),
            ("get", "/api/v1/runbooks/", None)]


def test_anonymous_and_a_bad_token_get_401_everywhere(api, run):
    before = snapshot()
    bad = api(None)
    bad.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    for client in (api(None), bad):
        for method, url, body in endpoints(run):
            resp = getattr(client, method)(url, body, format="json")
            assert resp.status_code == 401, (method, url)
            assert resp["WWW-Authenticate"] == "Token" and resp.json()["detail"]
    assert snapshot() == before


def test_operator_lists_every_run_paginated(api, operator, tenant, run):
    for i in range(30):
        Run.objects.create(kind="checkpoint-cleanup", state=Run.State.SUCCEEDED, created_by=tenant, title=f"cleanup {i}")
    body = api(operator).get(RUNS).json()
    assert body["count"] == 31 and len(body["results"]) == 25 and body["previous"] is None
    assert body["next"].endswith("/api/v1/runs/?page=2")
    page2 = api(operator).get(body["next"]).json()
    assert len(page2["results"]) == 6 and page2["results"][-1]["id"] == run.pk  # oldest last
    first = api(operator).get(RUNS, {"runbook": "Batch-Checkpoint", "state": "WAITING "}).json()["results"]
    assert [r["id"] for r in first] == [run.pk]
    row = first[0]
    assert row["state"] == "waiting" and row["progress"] == 40 and row["runbook"] == "batch-checkpoint"
    assert row["outcome"].startswith("Step 'stop-vm app-02' failed") and row["created_by"] == "olga"
    assert row["url"].endswith(f"/api/v1/runs/{run.pk}/") and row["page_url"].endswith(f"/ops/runs/{run.pk}/")
    done = api(operator).get(RUNS, {"state": "succeeded", "page_size": 100}).json()
    assert done["count"] == 30 and len(done["results"]) == 30


@pytest.mark.parametrize("query, field", [
    ({"state": "bogus"}, "state"), ({"runbook": "nosuch"}, "runbook"), ({"stat": "running"}, "stat"),
    ({"page": "99"}, None), ({"page": "0"}, None), ({"page": "9" * 5000}, None),
    ({"state": "$(whoami); '\"\u202e"}, "state"), ({"page_size": "0"}, "page_size"), ({"page_size": "201"}, "page_size"),
    ({"page_size": "-1"}, "page_size"), ({"page_size": "²"}, "page_size"), ({"page_size": "x" * 10_000}, "page_size"),
])
def test_a_bad_filter_is_refused_naming_it(api, operator, run, query, field):
    resp = api(operator).get(RUNS, query)
    if field is None:
        assert resp.status_code == 404 and resp.json()["detail"].startswith("page ")
        return
    assert resp.status_code == 400
    assert field in resp.json()["errors"] and field in resp.json()["detail"]


def test_other_methods_and_no_such_run(api, operator, run):
    c = api(operator)
    for method, url in (("options", RUNS), ("put", f"{RUNS}{run.pk}/"), ("patch", f"{RUNS}{run.pk}/"),
                        ("delete", f"{RUNS}{run.pk}/"), ("get", f"{RUNS}{run.pk}/cancel/"), ("post", f"{RUNS}{run.pk}/")):
        resp = getattr(c, method)(url, {}, format="json")
        assert resp.status_code == 405 and method.upper() in resp.json()["detail"], (method, url)
    for pk in ("999999", "9" * 30, "-1", "abc", "%E2%80%AE1"):
        resp = c.get(f"{RUNS}{pk}/")
        assert resp.status_code == 404 and resp.json()["detail"].startswith("No run "), pk
    assert Run.objects.filter(pk=run.pk, state=Run.State.WAITING).exists()


def test_run_detail_has_state_progress_outcome_and_steps(api, operator, admin_user, run):
    for user in (operator, admin_user):  # admins watch runs read-only
        body = api(user).get(f"{RUNS}{run.pk}/").json()
        assert body["state"] == "waiting" and body["progress"] == 40 and body["phase_label"] == "3/6 Stop the running VMs"
        assert [(s["index"], s["state"]) for s in body["steps"]] == [(0, "succeeded"), (1, "failed")]
        assert "Stop-SCVirtualMachine on app-02 failed: boom" in body["steps"][1]["error"]
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED, progress=97)
    assert api(operator).get(f"{RUNS}{run.pk}/").json()["progress"] == 100  # as the page shows it


def test_a_tenant_watches_runs_on_their_vms_and_gets_404_for_others(api, tenant, other_tenant, operator, run,
                                                                   subscription_a, subscription_b, make_vm):
    """Whoever started it (here an operator), a run acting on a VM of the tenant's subscriptions is theirs
    to watch, not to steer; any other run does not exist for them."""
    mine = Run.objects.create(kind="batch-checkpoint", created_by=operator, title="on my VM", state=Run.State.WAITING)
    theirs = Run.objects.create(kind="batch-checkpoint", created_by=operator, title="on their VM")
    RunTarget.objects.create(run=mine, vm=make_vm("vm-a", subscription_a))
    RunTarget.objects.create(run=theirs, vm=make_vm("vm-b", subscription_b))
    c = api(tenant)
    assert [r["id"] for r in c.get(RUNS).json()["results"]] == [mine.pk]
    assert c.get(f"{RUNS}{mine.pk}/").json()["title"] == "on my VM"
    assert c.get(f"{RUNS}{mine.pk}/events/").status_code == 200
    before = snapshot()
    for method, url, body in endpoints(mine)[3:]:
        if url != "/api/v1/runbooks/":
            resp = getattr(c, method)(url, body, format="json")
            assert resp.status_code == 403 and "Only operators" in resp.json()["detail"], url
    for other in (theirs, run):
        for method, url, body in endpoints(other)[1:]:
            if "/api/v1/runs/" in url and url != RUNS:
                resp = getattr(c, method)(url, body, format="json")
                assert resp.status_code in (403, 404), (method, url)
                if method == "get":
                    assert resp.status_code == 404 and resp.json()["detail"]
    assert snapshot() == before


@pytest.mark.parametrize("who", ["tenant", "admin_user"])
def test_only_operators_start_cancel_and_steer(request, api, run, who, tenant):
    user = request.getfixturevalue(who)
    mine = Run.objects.create(kind="batch-checkpoint", created_by=user, state=Run.State.WAITING, phase="stop")
    Step.objects.create(run=mine, index=0, phase="stop", action="stop-vm", target="x", state=Step.State.FAILED)
    before = snapshot()
    c = api(user)
    for target in (run, mine):
        for method, url, body in endpoints(target):
            if method == "post" or url.endswith("runbooks/"):  # asked before the run is looked up: the
                resp = getattr(c, method)(url, body, format="json")
                assert resp.status_code == 403, (who, url)  # same answer whether or not the run exists
                assert "Only operators" in resp.json()["detail"]
    assert snapshot() == before


@pytest.mark.parametrize("after, problem", [
    ("x", "must be a non-negative integer, got 'x'"), ("-1", "got '-1'"), ("\u00b2", "got '²'"), ("9" * 5000, "got '999"),
    ("3", "'after' is 3, but run"),
])
def test_events_cursor_is_checked(api, operator, run, after, problem):
    resp = api(operator).get(f"{RUNS}{run.pk}/events/", {"after": after})
    assert resp.status_code == 400 and problem in resp.json()["errors"]["after"][0]


def test_events_after_a_seq(api, operator, run, client_for):
    body = api(operator).get(f"{RUNS}{run.pk}/events/", {"after": 1}).json()
    assert [e["seq"] for e in body["events"]] == [2] and body["last_seq"] == 2 and body["more"] is False
    assert body["run"]["state"] == "waiting" and len(body["steps"]) == 2
    page = client_for(operator).get(f"/ops/runs/{run.pk}/events/", {"after": 1, "format": "json"}).json()
    assert body == page  # the run page's endpoint: the same reader, the same body
    assert api(operator).get(f"{RUNS}{run.pk}/events/", {"after": 2}).json()["events"] == []
    assert api(operator).get(f"{RUNS}{run.pk}/events/", {"after": 0, "x": 1}).status_code == 400


# --- operator actions ---------------------------------------------------------------------------

def test_operator_retries_skips_and_aborts(api, operator, run):
    c = api(operator)
    resp = c.post(f"{RUNS}{run.pk}/retry/", {"step": 1}, format="json")
    assert resp.status_code == 202 and resp.json()["run"] == run.pk and "Retrying step 1" in resp.json()["detail"]
    assert run.steps.get(index=1).state == Step.State.PENDING
    run.refresh_from_db()
    assert run.state == Run.State.RUNNING
    assert AuditEntry.objects.filter(action="step.retry", username="olga").exists()
    # the run no longer waits: a second retry and a skip are refused by its state
    for url, body in ((f"{RUNS}{run.pk}/retry/", {"step": 1}), (f"{RUNS}{run.pk}/skip/", {"step": 1})):
        resp = c.post(url, body, format="json")
        assert resp.status_code == 409, url
        assert "waiting for the operator" in resp.json()["detail"]
    # abort works in every state that is not final (issue 10 §3), a running run included
    assert c.post(f"{RUNS}{run.pk}/abort/", {}, format="json").status_code == 202
    run.refresh_from_db()
    assert run.abort_requested


def test_operator_skips_a_failed_step(api, operator, run):
    resp = api(operator).post(f"{RUNS}{run.pk}/skip/", {"step": 1}, format="json")
    assert resp.status_code == 202 and run.steps.get(index=1).state == Step.State.SKIPPED


def test_operator_aborts_a_waiting_run(api, operator, run):
    resp = api(operator).post(f"{RUNS}{run.pk}/abort/", format="json")
    assert resp.status_code == 202
    run.refresh_from_db()
    assert run.abort_requested is True and AuditEntry.objects.filter(action="run.abort").exists()


def test_operator_cancels_and_an_ended_run_is_409(api, operator, run):
    c = api(operator)
    assert c.post(f"{RUNS}{run.pk}/cancel/", {}, format="json").status_code == 202
    run.refresh_from_db()
    assert run.cancel_requested
    Run.objects.filter(pk=run.pk).update(state=Run.State.CANCELLED)
    resp = c.post(f"{RUNS}{run.pk}/cancel/", {}, format="json")
    assert resp.status_code == 409 and f"run {run.pk} has already ended (cancelled)" in resp.json()["detail"]


@pytest.mark.parametrize("url, body, field", [
    ("retry/", {}, "step"), ("retry/", {"step": "1"}, "step"), ("retry/", {"step": 1.5}, "step"),
    ("retry/", {"step": True}, "step"), ("retry/", {"step": -1}, "step"), ("retry/", {"step": 7}, "step"),
    ("retry/", {"step": 1, "force": True}, "force"), ("skip/", {"step": [1]}, "step"),
    ("skip/", {"step": "1; Remove-SCVirtualMachine"}, "step"), ("cancel/", {"now": True}, "now"),
    ("abort/", {"reason": "x" * 10_000}, "reason"),
])
def test_bad_action_input_is_refused_naming_the_field(api, operator, run, url, body, field):
    before = snapshot()
    resp = api(operator).post(f"{RUNS}{run.pk}/{url}", body, format="json")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()["errors"] and field in resp.json()["detail"]
    assert snapshot() == before


def test_json_only(api, operator, run):
    resp = api(operator).post(f"{RUNS}{run.pk}/retry/", "step=1", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415 and "application/x-www-form-urlencoded" in resp.json()["detail"]
    resp = api(operator).post(f"{RUNS}{run.pk}/retry/", "{not json", content_type="application/json")
    assert resp.status_code == 400 and resp.json()["detail"]
    assert run.steps.get(index=1).state == Step.State.FAILED


# --- starting runs --------------------------------------------------------------------------------

def test_operator_starts_a_batch_checkpoint(api, operator, sim, monkeypatch):
    Driver(monkeypatch)
    resp = api(operator).post(RUNS, {"runbook": "batch-checkpoint", "params": {"batch": 3, "cloud": "silver"}}, format="json")
    assert resp.status_code == 202, resp.content
    run = Run.objects.get()
    body = resp.json()
    assert body["run"] == run.pk and body["url"].endswith(f"/api/v1/runs/{run.pk}/")
    assert run.created_by == operator and run.params["batch"] == "3" and run.params["cloud"] == "Silver"
    assert AuditEntry.objects.filter(action="run.start", username="olga").exists()
    assert api(operator).get(body["url"]).json()["state"] == "queued"
    # the same VMs again while it is active: 409 naming the first run
    again = api(operator).post(RUNS, {"runbook": "batch-checkpoint", "params": {"batch": "3"}}, format="json")
    assert again.status_code == 409 and f"Run {run.pk} (" in again.json()["detail"]
    assert Run.objects.count() == 1


HOSTILE = ["$(Remove-SCVirtualMachine -VM x)", "3; Stop-Computer", "3' -or '1'='1", '3" | iex', "3\nStop-Computer",
           "3\u202e", "\u200f3", "x" * 10_240]


@pytest.mark.parametrize("body, field", [
    ({}, "runbook"), ({"runbook": "nosuch"}, "runbook"), ({"runbook": 5}, "runbook"), ({"runbook": None}, "runbook"),
    ({"runbook": "batch-checkpoint", "params": {"batch": "3"}, "user": "root"}, "user"),
    ({"runbook": "batch-checkpoint", "params": "batch=3"}, "params"),
    ({"runbook": "batch-checkpoint", "params": ["batch", "3"]}, "params"),
    ({"runbook": "batch-checkpoint", "params": {"batch": [3]}}, "params.batch"),
    ({"runbook": "batch-checkpoint", "params": {"batch": {"$gt": 1}}}, "params.batch"),
    ({"runbook": "batch-checkpoint", "params": {"batch": 3.5}}, "params.batch"),
    ({"runbook": "batch-checkpoint", "params": {"batch": "3", "batchh": "4"}}, "params.batchh"),
    ({"runbook": "batch-checkpoint", "params": {}}, "params.batch"),
    ({"runbook": "batch-checkpoint", "params": {"batch": "99"}}, "params.batch"),
    ({"runbook": "batch-checkpoint", "params": {"batch": "3", "cloud": "Nowhere"}}, "params.cloud"),
    ({"runbook": "batch-checkpoint", "params": {"batch": "3", "shutdown": "reboot"}}, "params.shutdown"),
    ({"runbook": "batch-checkpoint", "params": {"batch": "3", "checkpoint_name": "{vm.__class__}"}},
     "params.checkpoint_name"),
    ({"runbook": "checkpoint-cleanup", "params": {"older_than_days": -3}}, "params.older_than_days"),
    ({"runbook": "checkpoint-cleanup", "params": {"older_than_days": "many"}}, "params.older_than_days"),
    ({"runbook": "checkpoint-cleanup", "params": {"dry_run": "maybe", "keep_newest": 1}}, "params.dry_run"),
    ({"runbook": "checkpoint-cleanup", "params": {}}, "params"),
    *[({"runbook": "batch-checkpoint", "params": {"batch": h}}, "params.batch") for h in HOSTILE],
    *[({"runbook": "batch-checkpoint", "params": {"batch": "3", "cloud": h}}, "params.cloud") for h in HOSTILE],
    ({"runbook": "x" * 10_240}, "runbook"),
])
def test_bad_start_input_is_refused_naming_the_field(api, operator, sim, monkeypatch, body, field):
    Driver(monkeypatch)
    jobs_before = len(sim.state()["jobs"])
    resp = api(operator).post(RUNS, body, format="json")
    assert resp.status_code == 400, resp.content
    data = resp.json()
    assert field in data["errors"], data
    assert data["detail"].startswith("Refused, nothing was changed: ") and field in data["detail"]
    assert not Run.objects.exists() and not AuditEntry.objects.exists()
    assert len(sim.state()["jobs"]) == jobs_before  # nothing ran on the fabric


def test_every_bad_parameter_is_named_at_once(api, operator, sim, monkeypatch):
    Driver(monkeypatch)
    resp = api(operator).post(RUNS, {"runbook": "checkpoint-cleanup", "params": {
        "older_than_days": -3, "keep_newest": "many", "dry_run": "maybe"}}, format="json")
    errors = resp.json()["errors"]
    assert errors["params.older_than_days"] == ["older_than_days must be at least 0, not -3"]
    assert errors["params.keep_newest"] == ["keep_newest must be a whole number, not 'many'"]
    assert errors["params.dry_run"] == ["dry_run must be true or false, not 'maybe'"]


def test_session_auth_needs_the_csrf_token(operator, sim, monkeypatch):
    from rest_framework.test import APIClient

    Driver(monkeypatch)
    c = APIClient(enforce_csrf_checks=True)
    c.force_login(operator)
    assert c.get(RUNS).status_code == 200
    resp = c.post(RUNS, {"runbook": "batch-checkpoint", "params": {"batch": "3"}}, format="json")
    assert resp.status_code == 403 and "CSRF" in resp.json()["detail"] and not Run.objects.exists()
    c.get("/profile/")  # a page sets the CSRF cookie, as a browser would have it
    token = c.cookies["csrftoken"].value
    resp = c.post(RUNS, {"runbook": "batch-checkpoint", "params": {"batch": "3"}}, format="json", HTTP_X_CSRFTOKEN=token)
    assert resp.status_code == 202 and Run.objects.count() == 1


def test_operator_lists_runbooks_with_their_parameters(api, operator):
    body = api(operator).get("/api/v1/runbooks/").json()
    assert sorted(r["name"] for r in body["results"]) == ["batch-checkpoint", "checkpoint-cleanup", "host-resume", "patch-cluster"]
    patch = next(r for r in body["results"] if r["name"] == "patch-cluster")
    assert patch["params"][0]["name"] == "cluster" and patch["params"][0]["required"] is True
    assert "confirm" in [p["name"] for p in patch["params"]]
    batch = next(r for r in body["results"] if r["name"] == "batch-checkpoint")
    names = [p["name"] for p in batch["params"]]
    assert names[0] == "batch" and batch["params"][0]["required"] is True and "on_error" in names
    shutdown = next(p for p in batch["params"] if p["name"] == "shutdown")
    assert shutdown["choices"] == ["shutdown", "turnoff"] and shutdown["default"] == "shutdown"
