"""Hosting plans (admins change them; operators read them): list, create, edit, decommission, push.

Every write is ops/services/plans.py; a change VMM must know starts the plan update run
(ops/runbooks/plan_update.py) and the page says which run, with a link to watch it.
"""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from .. import authz
from ..authz import requires, restrict
from ..models import Plan, Run, Subscription
from ..services import plans as service
from ..tenancy_forms import PlanForm, put_errors

PUSH_RUNS_SHOWN = 5
LAST_RUNS = 500  # the list shows each plan's newest push among the newest pushes


def _plans(user, action="plan.view"):
    return restrict(Plan.objects.all(), user, action)


def push_runs(user, plan) -> list[Run]:
    """The plan's newest plan update runs the user may watch."""
    return list(restrict(Run.objects.filter(kind="plan-update", params__plan_id=plan.pk), user, "run.view")
                .order_by("-pk")[:PUSH_RUNS_SHOWN])


def _started(request, verb: str, run) -> None:
    if run is None:
        messages.success(request, f"{verb}. No subscription's VMM role needed to change.")
        return
    messages.success(request, format_html('{}. Pushing to VMM: <a href="{}">run #{}</a>; until it has read each '
                                          "role back, tenants keep the stricter permission.", verb,
                                          reverse("ops:run", args=[run.pk]), run.pk))


@requires("fabric.view")
@require_GET
def plan_list(request):
    rows = (_plans(request.user).select_related("connection").prefetch_related("clouds")
            .annotate(n_subs=Count("subscriptions")))
    last = {}
    for run in Run.objects.filter(kind="plan-update").order_by("-pk").only("pk", "state", "params", "message")[:LAST_RUNS]:
        last.setdefault(run.params.get("plan_id"), run)  # the newest of each plan
    plans = [(p, last.get(p.pk)) for p in rows]
    return render(request, "ops/plans/list.html", {"nav": "plans", "plans": plans})


@requires("plan.change")
def plan_new(request):
    form = PlanForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.changes()
        try:
            plan = service.create_plan(request.user, connection=form.cleaned_data["connection"], **data)
        except ValidationError as exc:
            put_errors(form, exc)
        else:
            messages.success(request, f"Plan {plan.name} created. Give it to a tenant with a subscription.")
            return redirect("ops:plan", plan.pk)
    return render(request, "ops/plans/edit.html", {"nav": "plans", "form": form, "plan": None})


@requires("fabric.view")
def plan_detail(request, pk):
    plan = get_object_or_404(_plans(request.user).select_related("connection"), pk=pk)
    may_change = authz.allowed(request.user, "plan.change", plan)
    form = PlanForm(request.POST or None, plan=plan) if may_change else None
    if request.method == "POST":
        authz.require(request.user, "plan.change", plan)
        if form.is_valid():
            try:
                plan, run = service.update_plan(request.user, plan, **form.changes())
            except ValidationError as exc:
                put_errors(form, exc)
            else:
                _started(request, f"Plan {plan.name} saved", run)
                return redirect("ops:plan", plan.pk)
    subs = (restrict(Subscription.objects.filter(plan=plan), request.user, "subscription.view")
            .annotate(n_members=Count("memberships")).order_by("name"))
    return render(request, "ops/plans/detail.html", {
        "nav": "plans", "plan": plan, "form": form, "may_change": may_change, "subscriptions": subs,
        "clouds": plan.clouds.order_by("name"), "runs": push_runs(request.user, plan),
        "pending": [s for s in subs if s.enforced_permission]})


def _changeable(request, pk) -> Plan:
    return get_object_or_404(_plans(request.user, "plan.change"), pk=pk)


@requires("plan.change")
@require_POST
def plan_decommission(request, pk):
    plan = _changeable(request, pk)
    try:
        service.decommission_plan(request.user, plan)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Plan {plan.name} is decommissioned: it takes no new subscriptions; "
                                  "its subscriptions go on.")
    return redirect("ops:plan", plan.pk)


@requires("plan.change")
@require_POST
def plan_push(request, pk):
    plan = _changeable(request, pk)
    try:
        run = service.push_plan(request.user, plan)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if run is None:
            messages.info(request, f"Plan {plan.name} has no subscription with a VMM user role: nothing to push.")
        else:
            _started(request, f"Plan {plan.name}", run)
    return redirect("ops:plan", plan.pk)


urlpatterns = [
    path("plans/", plan_list, name="plans"),
    path("plans/new/", plan_new, name="plan_new"),
    path("plans/<int:pk>/", plan_detail, name="plan"),
    path("plans/<int:pk>/decommission/", plan_decommission, name="plan_decommission"),
    path("plans/<int:pk>/push/", plan_push, name="plan_push"),
]
