"""A VM's page and what can be done from it: checkpoint, delete a checkpoint, restore, power.

A VM the user may not see is a 404 (its existence is not revealed); one they see but may not act on
is a 403 with the reason (the plan, a suspended subscription). Every action goes through
``ops/services/vm_actions.py``; a refusal there (bad input, the plan's limit, a run already acting
on the VM) shows on the form and changes nothing.
"""
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods

from ops import authz
from ops.authz import requires
from ops.models import Checkpoint, PowerAction
from ops.services import vm_actions
from ops.services.runs import RunConflict
from ops.vmdata import find_vm, vm_page


def _vm(request, vm_id):
    vm = find_vm(request.user, vm_id)
    if vm is None:
        raise Http404("No such VM, or it is not in your subscriptions.")
    return vm


def _refused(form, exc: ValidationError) -> int:
    """Put a service's refusal on the form, on its field when it names one of the form's; the status
    to answer with: 409 when another run holds the VM (as the API says it), else 400."""
    if isinstance(exc, (vm_actions.VMInUse, RunConflict)):
        form.add_error(None, exc.messages)
        return 409
    if hasattr(exc, "error_dict"):
        for field, errs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, exc.messages)
    return 400


def _started(request, vm, run, what):
    messages.success(request, f"{what}: run {run.pk} started. Its progress shows below.")
    return redirect("vm", vm_id=vm.vmm_id)


@requires("vm.view")
@require_GET
def vm_detail(request, vm_id):
    vm = _vm(request, vm_id)
    page = vm_page(request.user, vm)
    return render(request, "portal/vm_detail.html", {"nav": "my_vms", "p": page, "vm": vm})


@requires("vm.view")
@require_GET
def vm_checkpoints(request, vm_id):
    """The checkpoints section alone: the VM page reloads it when a run on the VM ends."""
    vm = _vm(request, vm_id)
    return render(request, "portal/_vm_checkpoints.html", {"p": vm_page(request.user, vm), "vm": vm})


class CheckpointForm(forms.Form):
    name = forms.CharField(max_length=vm_actions.NAME_MAX, strip=True)
    description = forms.CharField(required=False, max_length=vm_actions.DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 3}))


@requires("vm.view")
@require_http_methods(["GET", "POST"])
def vm_checkpoint(request, vm_id):
    vm = _vm(request, vm_id)
    authz.require(request.user, "vm.checkpoint", vm)
    page = vm_page(request.user, vm)
    form = CheckpointForm(request.POST if request.method == "POST" else None, initial={"name": vm_actions.default_name(vm)})
    if request.method == "POST" and form.is_valid():
        try:
            run = vm_actions.request_checkpoint(request.user, vm, form.cleaned_data["name"], form.cleaned_data["description"])
        except ValidationError as exc:
            status = _refused(form, exc)
        else:
            return _started(request, vm, run, f"Checkpoint '{form.cleaned_data['name']}' of {vm.name}")
    else:
        status = 400 if form.errors else 200
    return TemplateResponse(request, "portal/vm_checkpoint.html", {"nav": "my_vms", "p": page, "vm": vm, "form": form},
                            status=status)


def _checkpoint_of(vm, checkpoint_id):
    try:
        return Checkpoint.objects.get(vm=vm, vmm_id=checkpoint_id)
    except (Checkpoint.DoesNotExist, ValidationError, ValueError):
        return None


@requires("vm.view")
@require_http_methods(["GET", "POST"])
def vm_checkpoint_delete(request, vm_id, checkpoint_id):
    vm = _vm(request, vm_id)
    authz.require(request.user, "vm.checkpoint", vm)
    cp = _checkpoint_of(vm, checkpoint_id)
    if cp is None:
        raise Http404("No such checkpoint of this VM.")
    error = ""
    if request.method == "POST":
        try:
            run = vm_actions.request_remove_checkpoint(request.user, vm, cp)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            return _started(request, vm, run, f"Deleting checkpoint '{cp.name}'")
    return TemplateResponse(request, "portal/vm_checkpoint_delete.html", {"nav": "my_vms", "vm": vm, "cp": cp, "error": error},
                            status=409 if error else 200)


class RestoreForm(forms.Form):
    checkpoint = forms.UUIDField(error_messages={"invalid": "checkpoint: choose one of the VM's checkpoints"})
    checkpoint_first = forms.BooleanField(required=False, label="Checkpoint the VM first")
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)


@requires("vm.view")
@require_http_methods(["GET", "POST"])
def vm_restore(request, vm_id):
    """GET: choose a checkpoint; GET ?checkpoint=<id>: the confirmation page; POST (confirmed): restore."""
    vm = _vm(request, vm_id)
    authz.require(request.user, "vm.restore", vm)
    page = vm_page(request.user, vm)
    data = request.POST if request.method == "POST" else (request.GET if "checkpoint" in request.GET else None)
    form = RestoreForm(data)
    cp, status = None, 200
    if form.is_bound and form.is_valid():
        cp = _checkpoint_of(vm, form.cleaned_data["checkpoint"])
        if cp is None:
            form.add_error("checkpoint", "checkpoint: it is not a checkpoint of this VM (any more); choose one of the list")
        elif request.method == "POST" and form.cleaned_data["confirmed"]:
            try:
                run = vm_actions.request_restore(request.user, vm, cp, form.cleaned_data["checkpoint_first"])
            except ValidationError as exc:
                status = _refused(form, exc)
            else:
                return _started(request, vm, run, f"Restoring {vm.name} to '{cp.name}'")
    template = "portal/vm_restore_confirm.html" if cp is not None and not form.errors else "portal/vm_restore.html"
    return TemplateResponse(request, template, {"nav": "my_vms", "p": page, "vm": vm, "form": form, "cp": cp},
                            status=status if status != 200 else (400 if form.errors else 200))


@requires("vm.view")
@require_http_methods(["GET", "POST"])
def vm_power(request, vm_id):
    """POST action=start|shutdown|save acts at once; turn off (stop) asks first (GET shows the confirmation)."""
    vm = _vm(request, vm_id)
    authz.require(request.user, "vm.power", vm)
    action = (request.POST if request.method == "POST" else request.GET).get("action", "")
    if action not in PowerAction.values:
        return TemplateResponse(request, "portal/vm_power.html", {"nav": "my_vms", "vm": vm, "action": None,
                                "error": f"action: must be one of {', '.join(PowerAction.values)}"}, status=400)
    label = PowerAction(action).label
    if request.method == "POST" and (action != PowerAction.STOP or request.POST.get("confirmed") == "yes"):
        try:
            run = vm_actions.request_power(request.user, vm, action)
        except ValidationError as exc:
            return TemplateResponse(request, "portal/vm_power.html", {"nav": "my_vms", "vm": vm, "action": action,
                                    "label": label, "error": " ".join(exc.messages)}, status=409)
        return _started(request, vm, run, f"{label}: {vm.name}")
    if action not in authz.power_actions(request.user, vm):
        raise PermissionDenied(f"Your plan does not allow '{label}' for {vm.name}.")
    return TemplateResponse(request, "portal/vm_power.html", {"nav": "my_vms", "vm": vm, "action": action, "label": label})
