"""The operator's pages on a phone (390 px wide), in Debian's chromium: the header fits,
tables become stacked rows or scroll inside their card, nothing is off screen; and the
run page's step filter works there. The server is pytest-django's live server; the data
is written before the browser starts (the ORM is not used while Playwright's loop runs)."""
import datetime as dt
import os
import uuid
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTH = 390

# elements that stick out of the viewport without a scrolling box around them
OFFSCREEN = """(width) => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= width + 1) continue;
    let scroller = false;
    for (let p = el.parentElement; p; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if ((ox === 'auto' || ox === 'scroll' || ox === 'hidden') && p.getBoundingClientRect().right <= width + 1) { scroller = true; break; }
    }
    if (!scroller) out.push(el.tagName + '.' + el.className + ' right=' + Math.round(r.right));
  }
  return out.slice(0, 5);
}"""


@pytest.fixture
def world(operator):
    from ops.models import AuditEntry, Checkpoint, Cloud, Run, RunSchedule, ServerConnection, Step, VirtualMachine, VMHost

    conn = ServerConnection(name="vmm01", kind="vmm", host="vmm01.contoso.com", username="svc")
    conn.set_password("x")
    conn.save()
    ServerConnection.record_use(conn.pk, "VMM server vmm01: cannot reach vmm01.contoso.com:5985: connection refused "
                                         "(a long error that must wrap, not push the page wider)")
    cloud = Cloud.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="Gold")
    host = VMHost.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="hv-a02.contoso.com", in_maintenance=True)
    vm = VirtualMachine.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="app-frontend-0042.contoso.com",
                                       host=host, cloud=cloud, status="Running",
                                       custom={"Custom1": "3", "Application": "a-rather-long-application-name"})
    Checkpoint.objects.create(vm=vm, vmm_id=uuid.uuid4(), name="Batch 3 2026-11-02 before the monthly patch window",
                              added_at=timezone.now() - dt.timedelta(days=30))
    run = Run.objects.create(kind="batch-checkpoint", title="Batch checkpoint: batch 3 (Custom1, cloud Gold)",
                             state=Run.State.WAITING, phase="checkpoint", connection=conn, created_by=operator, progress=55,
                             params={"batch": "3", "property": "Custom1", "cloud": "Gold"},
                             message="Waiting for the operator: 1 step of 'Checkpoint every VM' failed (app007)")
    i = 0
    for phase, action, n in (("stop", "stop-vm", 30), ("checkpoint", "new-checkpoint", 60)):
        for k in range(n):
            failed = phase == "checkpoint" and k == 7
            Step.objects.create(run=run, index=i, phase=phase, action=action, target=f"app{k:03d}",
                                target_id=str(vm.vmm_id) if k == 0 else "",
                                state=Step.State.FAILED if failed else Step.State.SUCCEEDED,
                                error="VMM server vmm01: New-SCVMCheckpoint on app007 failed: the VM is busy" if failed else "")
            i += 1
    sched = RunSchedule.objects.create(name="Nightly batch 3", kind="batch-checkpoint", cron="0 2 * * *",
                                       params={"batch": "3", "connection": "vmm01"}, created_by=operator,
                                       last_slot_at=timezone.now(), last_slot_outcome="refused",
                                       last_slot_message="connection: no enabled VMM connection is named 'vmm01'")
    AuditEntry.objects.create(username="schedule Nightly batch 3", action="schedule.refused", object_type="RunSchedule",
                              object_id=str(sched.pk), object_repr=sched.name, detail={"reason": sched.last_slot_message})
    return {"run": run, "vm": vm}


def test_the_operators_pages_fit_a_phone(live_server, client, operator, world):
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    client.force_login(operator)
    session = client.cookies["sessionid"].value
    run, vm = world["run"], world["vm"]
    pages = {"dashboard": reverse("home"), "runs": reverse("ops:runs"), "run": reverse("ops:run", args=[run.pk]),
             "schedules": reverse("ops:schedules"), "vm": reverse("ops:vm", args=[vm.pk]), "vms": reverse("ops:vms"),
             "audit": reverse("ops:audit"), "fabric": reverse("ops:clusters"), "start": reverse("ops:run_start")}
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": WIDTH, "height": 844}, device_scale_factor=1)
            ctx.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            page = ctx.new_page()
            for name, path in pages.items():
                page.goto(live_server.url + path)
                page.wait_for_selector("main.page")
                page.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)
                assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, name
                assert page.evaluate(OFFSCREEN, WIDTH) == [], name
                # the whole header is on screen: brand, every nav link, sign out
                for sel in (".brand", ".mainnav a", ".who button"):
                    for box in [el.bounding_box() for el in page.query_selector_all(sel)]:
                        assert box and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH + 1, (name, sel, box)
            # a table is stacked rows with their labels, not a squeezed grid
            page.goto(live_server.url + pages["runs"])
            assert page.eval_on_selector("table.runs thead", "el => getComputedStyle(el).display") == "none"
            label = page.eval_on_selector("table.runs td[data-label=State]", "el => getComputedStyle(el, '::before').content")
            assert label == '"State"'

            # the run page: the failed phase is open, the one that went well is folded; the filter finds a target
            page.goto(live_server.url + pages["run"])
            assert page.eval_on_selector('details[data-phase="checkpoint"]', "el => el.open") is True
            assert page.eval_on_selector('details[data-phase="stop"]', "el => el.open") is False
            page.fill("[data-filter-target]", "app007")
            page.wait_for_function("() => document.querySelector('[data-filter-shown]').textContent.startsWith('2 of 90')")
            visible = page.eval_on_selector_all("tr[data-step-id]", "els => els.filter(e => e.offsetParent).map(e => e.dataset.state)")
            assert sorted(visible) == ["failed", "succeeded"]   # app007 in both phases; the stop group opened for it
            page.fill("[data-filter-target]", "")
            page.select_option("[data-filter-state]", "failed")
            page.wait_for_function("() => document.querySelector('[data-filter-shown]').textContent.startsWith('1 of 90')")
            assert page.eval_on_selector('details[data-phase="stop"]', "el => el.hidden") is True
            page.screenshot(path=str(ARTIFACTS / "phone-run-filtered.png"), full_page=True)
        finally:
            browser.close()
