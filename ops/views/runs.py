"""Run pages: the list (with history), the live run page, starting a run, and
the operator's controls. Thin: validate, call ops.services.runs, render.

The live page gets its updates from the websocket consumer (ops/consumers.py);
``run_events`` serves the same data over plain HTTP for browsers whose socket
is down (static/js/run-live.js falls back to it).
"""
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST


from .. import livetail
from ..authz import allowed, requires, restrict
from ..models import Run, Step, VirtualMachine
from ..services import runs as run_services
from . import runforms, runtargets, stepgroups, timeline

PAGE_SIZE = 25
LOG_RENDERED = 1000  # newest events rendered into the page; the socket sends the rest
SCHEDULED = "(schedule)"


def _visible_run(request, pk) -> Run:
    return get_object_or_404(restrict(Run.objects.all(), request.user, "run.view").select_related("created_by", "schedule"), pk=pk)


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@requires("run.list")   # admins watch runs too (read-only: every control needs run.operate)
def run_list(request):
    base = restrict(Run.objects.all(), request.user, "run.list")
    qs = base.select_related("created_by", "schedule")
    kind, state, who = (request.GET.get(k, "").strip()[:150] for k in ("kind", "state", "who"))
    kinds = sorted(set(base.values_list("kind", flat=True).distinct()) | {k for k, _ in _kind_choices()})
    # order_by(): the default ordering's columns would make every run its own "distinct" row
    people = sorted(base.exclude(created_by=None).order_by().values_list("created_by__username", flat=True).distinct())
    filter_errors = []
    if kind:
        kind = kind.lower()
        if kind not in kinds:
            filter_errors.append(f"No runbook is called {kind!r} (runbooks: {', '.join(kinds)}).")
        qs = qs.filter(kind=kind)
    if state:
        state = state.lower()
        if state not in Run.State.values:
            filter_errors.append(f"No run state is called {state!r} (states: {', '.join(Run.State.values)}).")
        qs = qs.filter(state=state)
    if who == SCHEDULED:
        qs = qs.filter(schedule__isnull=False)
    elif who:
        who = next((p for p in people if p.lower() == who.lower()), who)
        if who not in people:
            filter_errors.append(f"Nobody called {who!r} has started a run you can see.")
        qs = qs.filter(created_by__username=who)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    context = {
        "nav": "runs", "page": page, "runs": page.object_list, "targets": runtargets.targets(page.object_list),
        "kind": kind, "state": state, "who": who, "kinds": kinds, "states": Run.State.choices,
        "people": people, "scheduled": SCHEDULED, "filter_qs": filters.urlencode(), "filter_errors": filter_errors,
        "any_active": any(r.is_active for r in page.object_list), "can_operate": allowed(request.user, "run.operate"),
    }
    template = "ops/runs/_table.html" if request.headers.get("HX-Request") else "ops/runs/list.html"
    return render(request, template, context)


def _kind_choices():
    return runforms.kind_choices()


@requires("run.view")
def run_detail(request, pk):
    run = _visible_run(request, pk)
    steps = list(run.steps.order_by("index"))
    total = run.events.count()
    events = list(reversed(run.events.order_by("-seq")[:LOG_RENDERED]))
    return render(request, "ops/runs/detail.html", {
        "nav": "runs", "run": run, "steps": steps, "groups": stepgroups.group_steps(run, steps),
        "vm_links": _vm_links(request, run, steps),
        "phase_titles": stepgroups.phase_titles(run), "step_states": Step.State.choices,
        "events": events, "events_total": total,
        "events_cut": total > len(events), "last_seq": events[-1].seq if events else 0,
        "can_operate": allowed(request.user, "run.operate"),
        "shown_params": [(k, v) for k, v in run.params.items() if k != "preflight"],
        **({"timeline": timeline.build(run, steps), "timeline_colours": list(timeline.COLOURS.items())}
           if run.kind == "patch-cluster" else {}),
        "progress": 100 if run.state == Run.State.SUCCEEDED else run.progress,
        "first_failed": next((s for s in steps if s.state in (Step.State.FAILED, Step.State.WAITING)), None)
        if run.state == Run.State.WAITING else None,
    })


def _vm_links(request, run, steps) -> dict[str, int]:
    """Step target_id -> the VM page's pk, for the steps that act on a VM of the inventory."""
    if not allowed(request.user, "fabric.view") or run.connection_id is None:
        return {}
    ids = {}
    for s in steps:
        try:
            ids[s.target_id] = uuid.UUID(s.target_id)
        except (ValueError, AttributeError, TypeError):
            continue
    found = dict(VirtualMachine.objects.filter(connection_id=run.connection_id, vmm_id__in=set(ids.values()))
                 .values_list("vmm_id", "pk"))
    return {t: found[u] for t, u in ids.items() if u in found}


def _bad_request(message: str) -> HttpResponseBadRequest:
    """A refusal as plain text: the message may quote the request, and text/plain is never run as HTML."""
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


@requires("run.view")
def run_events(request, pk):
    """Events after ``?after=N`` (at most 500) as JSON (``?format=json``) or as log lines."""
    run = _visible_run(request, pk)
    raw = request.GET.get("after", "0")
    after = livetail.parse_cursor(raw)
    if after is None:
        message = f"'after' must be a non-negative integer, got {raw[:40]!r}."
        if _wants_json(request):
            return JsonResponse({"error": message}, status=400)
        return _bad_request(message)
    if _wants_json(request):
        return JsonResponse(livetail.events_payload(run.pk, after))
    return render(request, "ops/runs/_events.html", {"events": livetail.fetch_events(run.pk, after)})


def _wants_json(request) -> bool:
    return request.GET.get("format") == "json" or "application/json" in request.headers.get("Accept", "")


@requires("run.start")
def run_start(request):
    books = runforms.runbooks()
    kind = request.POST.get("kind") if request.method == "POST" else request.GET.get("kind")
    rb = next((b for b in books if b.kind == kind), None) if kind else (books[0] if books else None)
    if kind and rb is None:
        raise Http404(f"No runbook {kind!r}.")
    form, conflict = None, None
    if rb is not None:
        if request.method == "POST":
            form = runforms.StartRunForm(rb, request.POST)
        else:
            form = runforms.StartRunForm(rb, initial=_again_initial(request, rb))
        if request.method == "POST" and form.is_valid():
            try:
                run = run_services.start_run(request.user, rb.kind, form.params())
            except ValidationError as exc:
                runforms.apply_service_error(form, exc)
                conflict = _conflicting_run(request, exc)
            else:   # no "started" notice: the run page says what the run is doing, even once it has finished
                return redirect("ops:run", pk=run.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "ops/runs/start.html", {"nav": "runs", "runbooks": books, "rb": rb, "form": form,
                                                   "conflict": conflict}, status=status)


def _conflicting_run(request, exc):
    """The run that holds the VMs, when that is why the start was refused: the page links it."""
    run_id = getattr(exc, "run_id", None)
    return restrict(Run.objects.all(), request.user, "run.view").filter(pk=run_id).first() if run_id else None


def _again_initial(request, rb) -> dict:
    """``?again=RUN_ID``: the start form filled with that run's parameters ("Run again")."""
    again = request.GET.get("again")
    if not again:   # a link may name parameters (the VM page's "checkpoint the batch…")
        names = {str(p["name"]) for p in rb.params}
        return {k: v[:255] for k, v in request.GET.items() if k in names}
    again_id = livetail.parse_cursor(again)
    if again_id is None:
        raise Http404("No such run.")
    before = _visible_run(request, again_id)
    if before.kind != rb.kind:
        raise Http404(f"Run {before.pk} is a {before.kind} run, not {rb.kind}.")
    return {k: v for k, v in before.params.items() if v is not None and v != ""}


def _operate(request, pk, service: str, done: str):
    """POST of an operator button on the run page: the service decides; the page says what happened."""
    run = _visible_run(request, pk)
    try:
        getattr(run_services, service)(request.user, run)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, done.format(run=run.pk))
    return redirect("ops:run", pk=run.pk)


@requires("run.operate")
@require_POST
def run_cancel(request, pk):
    return _operate(request, pk, "cancel_run", "Cancel requested: run {run} stops after the current step, then cleans up.")


@requires("run.operate")
@require_POST
def run_abort(request, pk):
    """Give up a run in any state but ended: it undoes what it still can, then fails."""
    return _operate(request, pk, "abort_run", "Run {run} aborted: it undoes what it still can, then fails naming what was left.")


@requires("run.operate")
@require_POST
def run_retry(request, pk):
    """A run waiting because a server could not be used: try again now."""
    return _operate(request, pk, "retry_run", "Run {run} tries its servers again.")


STEP_ACTIONS = {"retry", "skip", "skip-node", "abort"}


@requires("run.operate")
@require_POST
def run_step_action(request, pk, step_pk):
    run = _visible_run(request, pk)
    step = get_object_or_404(Step, run=run, pk=step_pk)
    action = request.POST.get("action", "")
    if action not in STEP_ACTIONS:
        return _bad_request(f"Unknown action {action[:40]!r}; expected retry, skip, skip-node or abort.")
    svc = run_services
    try:
        if action == "retry":
            svc.retry_step(request.user, step)
            done = f"Retrying step {step.index} ({step})."
        elif action == "skip-node":
            svc.skip_block(request.user, run)
            done = f"Run {run.pk}: the node is resumed unpatched and its VMs come home; then the next node."
        elif action == "skip":
            svc.skip_step(request.user, step)
            done = f"Skipped step {step.index} ({step}); the run goes on."
        else:
            svc.abort_run(request.user, run)
            done = f"Run {run.pk} aborted; its clean-up runs now."
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, done)
    return redirect("ops:run", pk=run.pk)


@requires("run.view")
def timeline_view(request, pk):
    """A patch run's timeline and node cards, as the run page shows them (it fetches this as it changes)."""
    run = _visible_run(request, pk)
    if run.kind != "patch-cluster":
        raise Http404(f"Run {run.pk} is a {run.kind} run: only patch runs have a timeline.")
    return render(request, "ops/runs/_timeline.html", {"run": run, "timeline": timeline.build(run)})


urlpatterns = [
    path("runs/", run_list, name="runs"),
    path("runs/start/", run_start, name="run_start"),
    path("runs/<int:pk>/", run_detail, name="run"),
    path("runs/<int:pk>/events/", run_events, name="run_events"),
    path("runs/<int:pk>/cancel/", run_cancel, name="run_cancel"),
    path("runs/<int:pk>/abort/", run_abort, name="run_abort"),
    path("runs/<int:pk>/retry/", run_retry, name="run_retry"),
    path("runs/<int:pk>/steps/<int:step_pk>/action/", run_step_action, name="run_step_action"),
    path("runs/<int:pk>/timeline/", timeline_view, name="run_timeline"),
]
