"""Subscriptions (admins change them; operators read them): list, create, members, suspend, delete.

Every write is ops/services/subscriptions.py: creating one makes (or adopts) its VMM user role,
members go into the role in VMM as well as into Slipway, and deleting is refused while the
subscription still has VMs.
"""
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from .. import authz
from ..authz import requires, restrict
from ..models import Subscription
from ..services import subscriptions as service
from ..tenancy_forms import MemberForm, SubscriptionForm, put_errors


def _subs(user, action="subscription.view"):
    return restrict(Subscription.objects.select_related("plan", "plan__connection"), user, action)


@requires("fabric.view")
@require_GET
def subscription_list(request):
    rows = list(_subs(request.user).annotate(n_members=Count("memberships")).order_by("name"))
    counts = service.vm_counts(rows)
    return render(request, "ops/plans/subscriptions.html", {
        "nav": "plans", "rows": [(s, counts.get(s.pk, 0)) for s in rows]})


@requires("subscription.change")
def subscription_new(request):
    form = SubscriptionForm(request.POST or None, initial={"plan": request.GET.get("plan")}
                            if str(request.GET.get("plan", "")).isdigit() else None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        role = {"adopt_user_role": d["user_role"]} if d["role_mode"] == "adopt" else {"new_user_role": d["user_role"]}
        try:
            sub, run = service.create_subscription(request.user, d["plan"], d["name"], d["members"], **role)
        except ValidationError as exc:
            put_errors(form, exc)
        else:
            if run is not None:
                messages.success(request, format_html(
                    'Subscription {} created with VMM user role {}. Its checkpoint permission is being pushed: '
                    '<a href="{}">run #{}</a>; until VMM has been read to carry it, its members cannot use '
                    "checkpoints.", sub.name, sub.user_role_name, reverse("ops:run", args=[run.pk]), run.pk))
            elif sub.enforced_permission:
                messages.warning(request, f"Subscription {sub.name} created with VMM user role {sub.user_role_name}, "
                                          "but its permission could not be pushed yet (a push of the plan is running): "
                                          "use 'Push to VMM again' on the plan when it ends.")
            else:
                messages.success(request, f"Subscription {sub.name} created on VMM user role {sub.user_role_name}.")
            return redirect("ops:subscription", sub.pk)
    return render(request, "ops/plans/subscription_new.html", {"nav": "plans", "form": form})


@requires("fabric.view")
@require_GET
def subscription_detail(request, pk):
    sub = get_object_or_404(_subs(request.user), pk=pk)
    may_change = authz.allowed(request.user, "subscription.change", sub)
    return render(request, "ops/plans/subscription.html", {
        "nav": "plans", "sub": sub, "may_change": may_change, "vm_count": service.vm_count(sub),
        "members": sub.memberships.select_related("user").order_by("user__username"),
        "member_form": MemberForm(subscription=sub) if may_change else None})


def _changeable(request, pk) -> Subscription:
    return get_object_or_404(_subs(request.user, "subscription.change"), pk=pk)


def _refused_or(request, fn, ok: str) -> None:
    try:
        fn()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, ok)


@requires("subscription.change")
@require_POST
def subscription_state(request, pk):
    sub = _changeable(request, pk)
    state = request.POST.get("state", "")
    if state not in Subscription.State.values:
        messages.error(request, f"state: expected one of {', '.join(Subscription.State.values)}")
        return redirect("ops:subscription", sub.pk)
    ok = (f"Subscription {sub.name} suspended: its members see their VMs but cannot act on them."
          if state == Subscription.State.SUSPENDED else f"Subscription {sub.name} is active again.")
    _refused_or(request, lambda: service.set_state(request.user, sub, state), ok)
    return redirect("ops:subscription", sub.pk)


@requires("subscription.change")
@require_POST
def subscription_delete(request, pk):
    sub = _changeable(request, pk)
    try:
        service.delete_subscription(request.user, sub)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("ops:subscription", sub.pk)
    messages.success(request, f"Subscription {sub.name} deleted. Its VMM user role {sub.user_role_name} was left "
                              "in VMM as it is.")
    return redirect("ops:subscriptions")


@requires("subscription.change")
@require_POST
def member_add(request, pk):
    sub = _changeable(request, pk)
    form = MemberForm(request.POST, subscription=sub)
    if form.is_valid():
        d = form.cleaned_data
        try:
            service.add_member(request.user, sub, d["user"], d["vmm_user"])
        except ValidationError as exc:
            put_errors(form, exc)
        else:
            messages.success(request, f"{d['user'].get_username()} ({d['vmm_user']}) is a member of {sub.name}, "
                                      f"in Slipway and in VMM user role {sub.user_role_name}.")
            return redirect("ops:subscription", sub.pk)
    messages.error(request, "Member not added: " + "; ".join(
        f"{'' if f == '__all__' else f + ': '}{' '.join(e)}" for f, e in form.errors.items()))
    return redirect("ops:subscription", sub.pk)


@requires("subscription.change")
@require_POST
def member_remove(request, pk, user_pk):
    sub = _changeable(request, pk)
    user = get_object_or_404(get_user_model(), pk=user_pk, subscription_memberships__subscription=sub)
    _refused_or(request, lambda: service.remove_member(request.user, sub, user),
                f"{user.get_username()} is no longer a member of {sub.name}, in Slipway and in VMM.")
    return redirect("ops:subscription", sub.pk)


urlpatterns = [
    path("subscriptions/", subscription_list, name="subscriptions"),
    path("subscriptions/new/", subscription_new, name="subscription_new"),
    path("subscriptions/<int:pk>/", subscription_detail, name="subscription"),
    path("subscriptions/<int:pk>/state/", subscription_state, name="subscription_state"),
    path("subscriptions/<int:pk>/delete/", subscription_delete, name="subscription_delete"),
    path("subscriptions/<int:pk>/members/", member_add, name="subscription_member_add"),
    path("subscriptions/<int:pk>/members/<int:user_pk>/remove/", member_remove, name="subscription_member_remove"),
]
