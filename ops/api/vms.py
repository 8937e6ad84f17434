"""/api/v1/vms/: the VMs a user may see, as My VMs and the VM page show them (ops/vmdata.py
``visible_vms`` scopes them through ops/authz.py); its actions (checkpoint, restore, power) are in
ops/api/vm_actions.py. A VM's ``id`` is VMM's VM ID.
A VM the user may not see is a 404, never a 403: existence is not revealed."""
import uuid

import django_filters
from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, viewsets

from .. import vmdata
from ..models import Checkpoint, Subscription, VirtualMachine
from ..services.vm_actions import expires_at
from .runs import ERRORS, refuse_unknown_query
from .vm_actions import VMActionsMixin


class CheckpointSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="vmm_id", help_text="VMM's checkpoint ID.")
    name = serializers.CharField()
    description = serializers.CharField()
    created = serializers.DateTimeField(source="added_at", allow_null=True)
    expires = serializers.SerializerMethodField(help_text="When the plan's maximum age removes it; null if never.")

    def get_expires(self, cp) -> str | None:
        when = expires_at(cp, self.context["plan_of"](cp.vm))
        return serializers.DateTimeField().to_representation(when) if when else None


class VMSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="vmm_id", help_text="VMM's VM ID.")
    name = serializers.CharField()
    status = serializers.CharField()
    cloud = serializers.CharField(source="cloud.name", default=None, allow_null=True)
    subscription = serializers.SerializerMethodField()
    checkpoint_permission = serializers.SerializerMethodField(
        help_text="none | view_restore | create_view_restore, as Slipway enforces it for the VM's subscription.")
    power_actions = serializers.SerializerMethodField()
    memory_mb = serializers.IntegerField()
    checkpoint_count = serializers.SerializerMethodField()
    checkpoints = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    def _sub(self, vm):
        return self.context["subscription_of"](vm)

    def get_subscription(self, vm) -> str | None:
        sub = self._sub(vm)
        return sub.name if sub else None

    def get_checkpoint_permission(self, vm) -> str:
        sub = self._sub(vm)
        return sub.checkpoint_permission if sub else "none"

    def get_power_actions(self, vm) -> list[str]:
        sub = self._sub(vm)
        return sub.plan.power_actions if sub else []

    def get_checkpoint_count(self, vm) -> int:
        return len(vm.checkpoints.all())

    def get_checkpoints(self, vm) -> list[dict]:
        rows = sorted(vm.checkpoints.all(), key=lambda c: (c.added_at is None, c.added_at), reverse=True)
        return CheckpointSerializer(rows, many=True, context=self.context).data

    def get_page_url(self, vm) -> str:
        return self.context["request"].build_absolute_uri(reverse("vm", args=[vm.vmm_id]))


class VMFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(field_name="status", lookup_expr="iexact", help_text="Running, PowerOff, Saved, Paused.")
    cloud = django_filters.CharFilter(field_name="cloud__name", lookup_expr="iexact", help_text="Only VMs of this cloud.")
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Part of the VM's name.")
    subscription = django_filters.CharFilter(field_name="subscription_name", lookup_expr="iexact",
                                             help_text="Only VMs of this subscription.")

    class Meta:
        model = VirtualMachine
        fields = ("status", "cloud", "search", "subscription")


@extend_schema_view(
    list=extend_schema(summary="The VMs you may see (a tenant: those of your subscriptions)", responses={200: VMSerializer, **ERRORS}),
    retrieve=extend_schema(summary="One VM by VMM's VM ID", responses={200: VMSerializer, **ERRORS}),
)
class VMViewSet(VMActionsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = VMSerializer
    filterset_class = VMFilter
    queryset = VirtualMachine.objects.none()  # for the schema; get_queryset decides
    lookup_field = "vmm_id"
    lookup_url_kwarg = "pk"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return (vmdata.visible_vms(self.request.user)
                .prefetch_related(Prefetch("checkpoints", Checkpoint.objects.order_by("-added_at", "pk")))
                .order_by("name", "pk"))

    def list(self, request, *args, **kwargs):
        refuse_unknown_query(request, {"status", "cloud", "search", "subscription", "page", "page_size"})
        return super().list(request, *args, **kwargs)

    def get_object(self):
        raw = str(self.kwargs.get("pk"))
        try:
            vm_id = uuid.UUID(raw) if raw.isascii() else None
        except ValueError:
            vm_id = None
        vm = self.get_queryset().filter(vmm_id=vm_id).first() if vm_id else None
        if vm is None:
            raise exceptions.NotFound(f"No VM {raw[:40]!r} that you may see (a VM's id is VMM's VM ID).")
        return vm

    def get_serializer_context(self):
        context = super().get_serializer_context()
        subs = {}

        def subscription_of(vm):
            key = (vm.connection_id, vm.user_role_id)
            if not vm.user_role_id:
                return None
            if key not in subs:  # one query per distinct role on the page: a tenant has a few
                subs[key] = (Subscription.objects.select_related("plan")
                             .filter(plan__connection_id=vm.connection_id, user_role_id=vm.user_role_id).first())
            return subs[key]

        context["subscription_of"] = subscription_of
        context["plan_of"] = lambda vm: (subscription_of(vm).plan if subscription_of(vm) else None)
        return context
