"""Operators' cron schedules for runbooks. Thin: the form checks shapes, the
schedule services (ops/services/schedules.py) check meaning and write; on any
error nothing is written and the form shows why."""
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from ..authz import allowed, requires, restrict
from ..models import RunSchedule
from ..services import schedules as schedule_services
from . import offered, runforms

PREFIX = "p_"  # parameter fields, so a runbook parameter never collides with name/cron


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Unique, e.g. “Nightly batch 3”.")
    cron = forms.CharField(max_length=100, label="Cron (UTC)",
                           help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 0 2 * * * for 02:00 every day.",
                           widget=forms.TextInput(attrs={"class": "cron", "placeholder": "0 2 * * *"}))

    def __init__(self, rb, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runbook = rb
        self.fields.update(runforms.param_fields(rb, PREFIX))
        offered.apply(self, PREFIX)

    def clean_cron(self):
        try:
            return schedule_services.validate_cron(self.cleaned_data["cron"])
        except ValidationError as exc:
            raise ValidationError([m.removeprefix("cron: ") for m in exc.messages]) from None

    def params(self) -> dict:
        return runforms.collect_params(self.runbook, self.cleaned_data, PREFIX)

    def param_fields(self):
        return [self[name] for name in self.fields if name.startswith(PREFIX)]


def _runbooks():
    return runforms.runbooks()


def _pick(books, kind):
    if not kind:
        return books[0] if books else None
    rb = next((b for b in books if b.kind == kind), None)
    if rb is None:
        raise Http404(f"No runbook {kind!r}.")
    return rb


def _editable(request, pk) -> RunSchedule:
    return get_object_or_404(restrict(RunSchedule.objects.all(), request.user, "schedule.change"), pk=pk)


@requires("schedule.view")   # admins read the schedules as they read runs; every change is schedule.change
def schedule_list(request):
    schedules = restrict(RunSchedule.objects.all(), request.user, "schedule.view")
    schedules = schedules.select_related("q_schedule", "last_run", "created_by", "connection")
    return render(request, "ops/schedules/list.html", {"nav": "schedules", "schedules": schedules,
                                                       "can_operate": allowed(request.user, "schedule.change")})


@requires("schedule.change")
def schedule_new(request):
    books = _runbooks()
    rb = _pick(books, request.POST.get("kind") if request.method == "POST" else request.GET.get("kind"))
    form = ScheduleForm(rb, request.POST or None) if rb else None
    if request.method == "POST" and form is not None and form.is_valid():
        try:
            sched = schedule_services.create_schedule(request.user, name=form.cleaned_data["name"], kind=rb.kind,
                                                cron=form.cleaned_data["cron"], params=form.params())
        except ValidationError as exc:
            runforms.apply_service_error(form, exc, PREFIX, {"name": "name", "cron": "cron"})
        else:
            messages.success(request, f"Schedule “{sched.name}” created.")
            return redirect("ops:schedules")
    return _render_form(request, books, rb, form, None)


@requires("schedule.change")
def schedule_edit(request, pk):
    sched = _editable(request, pk)
    books = _runbooks()
    rb = _pick(books, sched.kind)  # a schedule keeps its runbook; make a new schedule for another
    if request.method == "POST":
        form = ScheduleForm(rb, request.POST)
        if form.is_valid():
            try:
                schedule_services.update_schedule(request.user, sched, name=form.cleaned_data["name"],
                                            cron=form.cleaned_data["cron"], params=form.params())
            except ValidationError as exc:
                runforms.apply_service_error(form, exc, PREFIX, {"name": "name", "cron": "cron"})
            else:
                messages.success(request, f"Schedule “{form.cleaned_data['name']}” saved.")
                return redirect("ops:schedules")
    else:
        initial = {"name": sched.name, "cron": sched.cron}
        initial.update({PREFIX + k: v for k, v in (sched.params or {}).items() if v not in (None, "")})
        form = ScheduleForm(rb, initial=initial)
    return _render_form(request, books, rb, form, sched)


def _render_form(request, books, rb, form, sched):
    status = 400 if request.method == "POST" else 200
    return render(request, "ops/schedules/form.html", {
        "nav": "schedules", "runbooks": books, "rb": rb, "form": form, "schedule": sched,
    }, status=status)


@requires("schedule.change")
@require_POST
def schedule_toggle(request, pk):
    sched = _editable(request, pk)
    svc = schedule_services
    try:
        if sched.enabled:
            svc.pause_schedule(request.user, sched)
            messages.success(request, f"Schedule “{sched.name}” paused: it starts no runs until resumed.")
        else:
            svc.resume_schedule(request.user, sched)
            messages.success(request, f"Schedule “{sched.name}” resumed.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("ops:schedules")


@requires("schedule.change")
@require_POST
def schedule_delete(request, pk):
    sched = _editable(request, pk)
    name = sched.name
    try:
        schedule_services.delete_schedule(request.user, sched)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Schedule “{name}” deleted; the runs it started stay in the history.")
    return redirect("ops:schedules")


urlpatterns = [
    path("schedules/", schedule_list, name="schedules"),
    path("schedules/new/", schedule_new, name="schedule_new"),
    path("schedules/<int:pk>/", schedule_edit, name="schedule_edit"),
    path("schedules/<int:pk>/toggle/", schedule_toggle, name="schedule_toggle"),
    path("schedules/<int:pk>/delete/", schedule_delete, name="schedule_delete"),
]
