"""A large run stays readable: steps grouped by phase, folded when all went well."""
import pytest
from django.urls import reverse

from ops.models import Run, Step

pytestmark = pytest.mark.django_db


def big_run(operator, failed_in_checkpoint=True):
    run = Run.objects.create(kind="batch-checkpoint", title="Batch checkpoint: batch 3", created_by=operator,
                             state=Run.State.RUNNING, phase="checkpoint")
    i = 0
    for phase, action, n in (("discover", "discover", 1), ("stop", "stop-vm", 40), ("checkpoint", "new-checkpoint", 200)):
        for k in range(n):
            state = Step.State.SUCCEEDED
            if phase == "checkpoint":
                state = Step.State.FAILED if (failed_in_checkpoint and k == 7) else Step.State.RUNNING if k < 20 else Step.State.PENDING
            Step.objects.create(run=run, index=i, phase=phase, action=action, target=f"app{k:03d}", state=state,
                                error="VMM server vmm01: boom" if state == Step.State.FAILED else "")
            i += 1
    return run


def groups(page):
    out = {}
    page = page[:page.index('<template id="step-row-tpl">')]   # the rows and groups rendered, not the templates
    for chunk in page.split('<details class="phase-group"')[1:]:
        head = chunk[:chunk.index(">")]
        phase = head.split('data-phase="', 1)[1].split('"', 1)[0]
        out[phase] = ("open" in head.split('data-phase="', 1)[1].split('"', 1)[1], chunk[:chunk.index("</details>")])
    return out


def test_steps_are_grouped_by_phase_folded_when_all_went_well(client_for, operator):
    run = big_run(operator)
    page = client_for(operator).get(reverse("ops:run", args=[run.pk])).content.decode()
    g = groups(page)
    assert list(g) == ["discover", "stop", "checkpoint"]   # the runbook's order
    assert g["stop"][0] is False and g["discover"][0] is False   # all succeeded: folded
    assert g["checkpoint"][0] is True                            # one failed, some run: open
    assert "Stop the running VMs" in g["stop"][1] and "40 succeeded" in g["stop"][1]
    assert "1 failed" in g["checkpoint"][1] and "19 running" in g["checkpoint"][1] and "180 pending" in g["checkpoint"][1]
    # the phase is said once, in the group's title, not on every row beside the action
    assert "<th>Phase</th>" not in page and 'data-f="phase"' not in page
    # the filter by state and target, and its script (no inline script)
    assert 'data-filter-state' in page and 'data-filter-target' in page and "js/run-steps.js" in page
    assert page.count('<option value="failed">Failed</option>') == 1


def test_a_run_with_no_steps_yet_says_so(client_for, operator):
    run = Run.objects.create(kind="batch-checkpoint", created_by=operator)
    page = client_for(operator).get(reverse("ops:run", args=[run.pk])).content.decode()
    assert "No steps yet" in page and "phase-group-tpl" in page


def test_a_started_run_page_carries_no_stale_started_notice(sim, client_for, operator):
    resp = client_for(operator).post(reverse("ops:run_start"), {"kind": "batch-checkpoint", "batch": "3"}, follow=True)
    run = Run.objects.get()
    assert resp.redirect_chain[-1][0] == reverse("ops:run", args=[run.pk])
    assert "started." not in resp.content.decode() and f"Run {run.pk} (" not in resp.content.decode()


def test_the_overlap_refusal_is_a_sentence_that_links_the_run_holding_the_vms(sim, client_for, operator):
    c = client_for(operator)
    c.post(reverse("ops:run_start"), {"kind": "batch-checkpoint", "batch": "3"})
    first = Run.objects.get()
    resp = c.post(reverse("ops:run_start"), {"kind": "batch-checkpoint", "batch": "3"})
    assert resp.status_code == 400 and Run.objects.count() == 1
    page = resp.content.decode()
    assert f"Run {first.pk} (Batch checkpoint: batch 3" in page
    assert f'<a href="{reverse("ops:run", args=[first.pk])}">run {first.pk} ·' in page


def test_a_link_may_fill_the_start_form(client_for, operator):
    form = client_for(operator).get(reverse("ops:run_start"), {"kind": "batch-checkpoint", "batch": "3", "nope": "x"}).context["form"]
    assert form["batch"].value() == "3" and "nope" not in form.fields
