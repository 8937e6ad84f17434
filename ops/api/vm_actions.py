"""POST /api/v1/vms/{id}/checkpoint/ | restore/ | power/: what the VM page's buttons do, through the
same service (ops/services/vm_actions.py), so nothing is possible here that the page refuses.

Answers: 202 ``{run, url, page_url, detail}``; 400 naming each bad field; 403 with the reason when
the plan (or a suspended subscription, or the role) does not allow it; 404 for a VM the user may
not see (``VMViewSet.get_object``); 409 ``{detail, run, run_url}`` while another run acts on the VM.
"""
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import authz
from ..models import Checkpoint, PowerAction
from ..services import vm_actions
from . import serializers as s
from .fields import StrictCharField, StrictSerializer
from .runs import ERRORS, accepted


class CheckpointRequest(StrictSerializer):
    name = StrictCharField(max_length=vm_actions.NAME_MAX, required=False, allow_blank=False, trim_whitespace=True,
                                 help_text="The checkpoint's name; default: '<vm> <date time>', as the VM page offers.")
    description = StrictCharField(max_length=vm_actions.DESCRIPTION_MAX, required=False, allow_blank=True,
                                        default="")


class RestoreRequest(StrictSerializer):
    checkpoint = serializers.UUIDField(help_text="VMM's checkpoint ID (a VM's `checkpoints[].id`).")
    checkpoint_first = serializers.BooleanField(required=False, default=False,
                                                help_text="Make a checkpoint first (when the plan allows create).")


class PowerRequest(StrictSerializer):
    action = serializers.ChoiceField(choices=PowerAction.values, help_text="start | shutdown | stop | save")


class InUseSerializer(serializers.Serializer):
    detail = serializers.CharField()
    run = serializers.IntegerField(help_text="The run acting on the VM.")
    run_url = serializers.URLField()


ACTION_RESPONSES = {202: s.RunAcceptedSerializer, **ERRORS,
                    409: OpenApiResponse(InUseSerializer, description="Another run is acting on the VM.")}


def _in_use(request, exc: vm_actions.VMInUse) -> Response:
    return Response({"detail": " ".join(exc.messages), "run": exc.run.pk,
                     "run_url": request.build_absolute_uri(reverse("api:run-detail", args=[exc.run.pk]))},
                    status=status.HTTP_409_CONFLICT)


def _call(request, fn, *args):
    """The service's answer as the API's: a run (202), or its refusal as 409 / 403 / 400."""
    try:
        return fn(*args), None
    except vm_actions.VMInUse as exc:
        return None, _in_use(request, exc)
    except vm_actions.PlanRefuses as exc:
        raise exceptions.PermissionDenied(" ".join(exc.messages)) from None
    except PermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc) or None) from None
    except ValidationError:
        raise  # 400 naming the field (ops/api/errors.py)


class VMActionsMixin:
    """The three actions of ``VMViewSet`` (ops/api/vms.py); ``get_object`` is its 404-not-403 lookup."""

    def _body(self, request, serializer_class, vm, act):
        try:  # who may, before any input is read (as the page does)
            authz.require(request.user, act, vm)
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from None
        data = serializer_class(data=request.data if request.data else {})
        data.is_valid(raise_exception=True)
        return data.validated_data

    @extend_schema(summary="Checkpoint a VM (what its plan allows; with 1 kept the new one replaces the old)",
                   request=CheckpointRequest, responses=ACTION_RESPONSES)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def checkpoint(self, request, pk=None):
        vm = self.get_object()
        body = self._body(request, CheckpointRequest, vm, "vm.checkpoint")
        name = body.get("name") or vm_actions.default_name(vm)
        run, refused = _call(request, vm_actions.request_checkpoint, request.user, vm, name, body["description"])
        return refused or accepted(request, run, f"Checkpoint '{name}' of {vm.name}: run {run.pk} queued.")

    @extend_schema(summary="Restore a VM to one of its checkpoints (everything since is lost; a running VM restarts "
                           "from that point)", request=RestoreRequest, responses=ACTION_RESPONSES)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def restore(self, request, pk=None):
        vm = self.get_object()
        body = self._body(request, RestoreRequest, vm, "vm.restore")
        cp = Checkpoint.objects.filter(vm=vm, vmm_id=body["checkpoint"]).first()
        if cp is None:
            raise exceptions.ValidationError({"checkpoint": [
                f"{vm.name} has no checkpoint {body['checkpoint']} (its checkpoints are listed in GET /api/v1/vms/"
                f"{vm.vmm_id}/)"]})
        run, refused = _call(request, vm_actions.request_restore, request.user, vm, cp, body["checkpoint_first"])
        return refused or accepted(request, run, f"Restoring {vm.name} to '{cp.name}': run {run.pk} queued.")

    @extend_schema(summary="Start, shut down (guest), turn off or save a VM, as its plan allows",
                   request=PowerRequest, responses=ACTION_RESPONSES)
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def power(self, request, pk=None):
        vm = self.get_object()
        body = self._body(request, PowerRequest, vm, "vm.power")
        act = body["action"]
        run, refused = _call(request, vm_actions.request_power, request.user, vm, act)
        return refused or accepted(request, run, f"{PowerAction(act).label}: {vm.name}: run {run.pk} queued.")
