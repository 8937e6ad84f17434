"""/api/v1/plans/ and /api/v1/subscriptions/: hosting plans and subscriptions through the same
services as the admin pages (ops/services/plans.py, ops/services/subscriptions.py).

Admins create and change them; operators read them; a tenant reads the plans and subscriptions
they are a member of (ops/authz.py ``restrict``), so a script can see what its plan allows.
A PATCH that changes what VMM must know (the checkpoint permission, the clouds) starts the plan
update run and answers 202 with the plan, ``run`` and ``url``; a change while the plan's previous
push still runs is a 409 naming that run.
"""
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response

from .. import roles
from ..authz import restrict
from ..models import CheckpointPermission, Plan, PowerAction, ServerConnection, Subscription
from ..services import plans as plan_services
from ..services import subscriptions as sub_services
from .errors import Conflict
from .fields import StrictCharField, StrictSerializer, WholeNumberField, check_text
from .permissions import may
from .runs import ACTION_ERRORS, ERRORS, refuse_unknown_query

NAME_MAX = 100


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false: not "yes", not 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def _name(value: str, field: str) -> str:
    value = check_text(value, field).strip()
    if not value:
        raise serializers.ValidationError(f"{field} may not be blank")
    return value


class PlanSerializer(serializers.ModelSerializer):
    connection = serializers.CharField(source="connection.name", help_text="The VMM server's connection name.")
    clouds = serializers.SerializerMethodField(help_text="The names of the clouds the plan offers.")
    power_actions = serializers.ListField(child=serializers.CharField(), read_only=True,
                                          help_text="start, shutdown, stop, save: what tenants may do.")
    subscriptions = serializers.IntegerField(source="n_subs", read_only=True, help_text="How many subscriptions it has.")
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Plan
        fields = ("id", "name", "description", "connection", "clouds", "state", "checkpoint_permission",
                  "checkpoints_kept", "remove_oldest_when_full", "checkpoint_max_age_days", "power_actions",
                  "subscriptions", "created_at", "updated_at", "page_url")

    def get_clouds(self, plan) -> list[str]:
        return sorted(c.name for c in plan.clouds.all())

    def get_page_url(self, plan) -> str:
        return self.context["request"].build_absolute_uri(reverse("ops:plan", args=[plan.pk]))


class PlanWriteSerializer(StrictSerializer):
    """The fields a POST must give (name, connection, clouds, checkpoint_permission) and a PATCH may."""

    name = StrictCharField(max_length=NAME_MAX)
    description = StrictCharField(required=False, allow_blank=True, max_length=2000)
    connection = StrictCharField(max_length=NAME_MAX, help_text="The VMM connection's name; cannot change later.")
    # not trimmed here, so that validate_clouds sees a newline or a bidi mark as it was sent
    clouds = serializers.ListField(child=StrictCharField(max_length=255, trim_whitespace=False), min_length=1,
                                   max_length=100, error_messages={"min_length": "give at least 1 cloud"})
    state = serializers.ChoiceField(choices=Plan.State.choices, required=False)
    checkpoint_permission = serializers.ChoiceField(choices=CheckpointPermission.choices)
    checkpoints_kept = WholeNumberField(min_value=1, max_value=64, required=False)
    remove_oldest_when_full = StrictBooleanField(required=False)
    checkpoint_max_age_days = WholeNumberField(min_value=1, max_value=3650, required=False, allow_null=True)
    power_actions = serializers.ListField(child=serializers.ChoiceField(choices=PowerAction.choices),
                                          required=False, max_length=len(PowerAction.values))

    def validate_name(self, value):
        return _name(value, "name")

    def validate_description(self, value):
        return check_text(value, "description") if len(value) <= 500 else value

    def validate_clouds(self, value):
        return [check_text(name, f"cloud {name.strip()[:60]!r}").strip() for name in value]

    def validate_connection(self, value):
        if self.partial:
            raise serializers.ValidationError("a plan's VMM server cannot change: its subscriptions' roles live there")
        conn = ServerConnection.objects.filter(kind="vmm", name=value).first()
        if conn is None:
            known = ", ".join(ServerConnection.objects.filter(kind="vmm").values_list("name", flat=True)) or "none"
            raise serializers.ValidationError(f"no VMM connection named {value[:60]!r} (VMM connections: {known})")
        return conn


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = serializers.CharField(source="plan.name")
    checkpoint_permission = serializers.CharField(read_only=True, help_text="What Slipway enforces for it now.")
    members = serializers.SerializerMethodField(help_text="Each member: the Slipway user and the account in VMM.")
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = ("id", "name", "plan", "state", "user_role_id", "user_role_name", "checkpoint_permission",
                  "enforced_permission", "members", "created_at", "page_url")

    def get_members(self, sub) -> list[dict]:
        return [{"user": m.user.get_username(), "vmm_user": m.vmm_user} for m in sub.memberships.all()]

    def get_page_url(self, sub) -> str:
        return self.context["request"].build_absolute_uri(reverse("ops:subscription", args=[sub.pk]))


class MemberSerializer(StrictSerializer):
    user = StrictCharField(max_length=150, help_text="The Slipway user (with the tenant role).")
    vmm_user = StrictCharField(max_length=255, help_text="The account as VMM lists it: DOMAIN\\name.")

    def validate_user(self, value):
        user = get_user_model().objects.filter(username=value).first()
        if user is None or not roles.is_tenant(user):
            raise serializers.ValidationError(f"{value[:60]} is not a Slipway user with the tenant role")
        return user

    def validate_vmm_user(self, value):
        return _name(value, "vmm_user")


class SubscriptionCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=NAME_MAX, help_text="The tenant account, e.g. Contoso.")
    plan = StrictCharField(max_length=NAME_MAX, help_text="The plan's name.")
    user_role = StrictCharField(required=False, allow_blank=True, max_length=255,
                                help_text="New role: its name (empty: the account name). Adopted: its name or ID.")
    adopt_user_role = StrictBooleanField(required=False, default=False,
                                         help_text="true: use a VMM user role that exists instead of making one.")
    members = MemberSerializer(many=True, required=False, default=list)

    def validate_name(self, value):
        return _name(value, "name")

    def validate_user_role(self, value):
        return check_text(value, "user_role").strip()

    def validate_plan(self, value):
        plan = Plan.objects.filter(name=value).first()
        if plan is None:
            raise serializers.ValidationError(f"no plan named {value[:60]!r}")
        return plan

    def validate(self, data):
        if data.get("adopt_user_role") and not data.get("user_role"):
            raise serializers.ValidationError({"user_role": "name the VMM user role to adopt (its name or ID)"})
        users = [m["user"].pk for m in data.get("members", [])]
        if len(users) != len(set(users)):
            raise serializers.ValidationError({"members": "a user is listed twice"})
        return data


def _service(fn, *args, **kwargs):
    """A service's ValidationError as a 400 naming the field, or a 409 when a push of the plan holds it."""
    try:
        return fn(*args, **kwargs)
    except DjangoValidationError as exc:
        errs = exc.error_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.error_list}
        if any(e.code == "conflict" for es in errs.values() for e in es):
            raise Conflict(" ".join(exc.messages)) from None
        raise


def _with_run(request, body: dict, run) -> dict:
    body["run"] = run.pk if run else None
    body["url"] = request.build_absolute_uri(reverse("api:run-detail", args=[run.pk])) if run else None
    return body


def _not_found(what: str, pk) -> exceptions.NotFound:
    return exceptions.NotFound(f"No {what} {str(pk)[:40]!r} that you may see.")


class _AdminWrites:
    """Reads for whoever ``restrict`` lets see the object (404 otherwise, naming it); the writes in
    ``write_actions`` also need the ``change`` action (ops/authz.py); unknown query parameters refused."""

    noun = ""
    write_actions: tuple = ()

    def get_permissions(self):
        if self.action in self.write_actions:
            return [*super().get_permissions(), may(f"{self.noun}.change")]
        return super().get_permissions()

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            raise _not_found(self.noun, self.kwargs.get("pk")) from None

    def list(self, request, *args, **kwargs):
        refuse_unknown_query(request, set(self.paginator.query_params))
        return super().list(request, *args, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="Hosting plans (a tenant: those of your subscriptions)", responses={200: PlanSerializer, **ERRORS}),
    retrieve=extend_schema(summary="One hosting plan", responses={200: PlanSerializer, **ERRORS}),
    create=extend_schema(summary="Create a hosting plan (admins)", request=PlanWriteSerializer,
                         responses={201: PlanSerializer, **ERRORS}),
    partial_update=extend_schema(
        summary="Change a hosting plan (admins); 202 with run and url when VMM's user roles must change",
        request=PlanWriteSerializer, responses={200: PlanSerializer, 202: PlanSerializer, **ACTION_ERRORS}),
)
class PlanViewSet(_AdminWrites, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PlanSerializer
    queryset = Plan.objects.none()  # for the schema; get_queryset decides
    noun, write_actions = "plan", ("create", "partial_update")
    http_method_names = ["get", "post", "patch", "head", "options"]
    filter_backends = []

    def get_queryset(self):
        return (restrict(Plan.objects.all(), self.request.user, "plan.view").select_related("connection")
                .prefetch_related("clouds").annotate(n_subs=Count("subscriptions")).order_by("name"))

    def _fresh(self, plan):
        return PlanSerializer(self.get_queryset().get(pk=plan.pk), context=self.get_serializer_context()).data

    def create(self, request):
        data = PlanWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = dict(data.validated_data)
        plan = _service(plan_services.create_plan, request.user, **d)
        return Response(self._fresh(plan), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        plan = self.get_object()
        data = PlanWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if not data.validated_data:
            raise exceptions.ValidationError({"non_field_errors": ["nothing to change: send the fields to change"]})
        plan, run = _service(plan_services.update_plan, request.user, plan, **data.validated_data)
        body = _with_run(request, dict(self._fresh(plan)), run)
        return Response(body, status=status.HTTP_202_ACCEPTED if run else status.HTTP_200_OK)


@extend_schema_view(
    list=extend_schema(summary="Subscriptions (a tenant: your own)", responses={200: SubscriptionSerializer, **ERRORS}),
    retrieve=extend_schema(summary="One subscription", responses={200: SubscriptionSerializer, **ERRORS}),
    create=extend_schema(summary="Create a subscription and its VMM user role, or adopt one (admins)",
                         request=SubscriptionCreateSerializer, responses={201: SubscriptionSerializer, **ACTION_ERRORS}),
)
class SubscriptionViewSet(_AdminWrites, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = SubscriptionSerializer
    queryset = Subscription.objects.none()  # for the schema; get_queryset decides
    noun, write_actions = "subscription", ("create",)
    filter_backends = []

    def get_queryset(self):
        return (restrict(Subscription.objects.all(), self.request.user, "subscription.view")
                .select_related("plan").prefetch_related("memberships__user").order_by("name"))

    def create(self, request):
        data = SubscriptionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        role = {"adopt_user_role" if d["adopt_user_role"] else "new_user_role": d.get("user_role") or None}
        members = [(m["user"], m["vmm_user"]) for m in d["members"]]
        sub, run = _service(sub_services.create_subscription, request.user, d["plan"], d["name"], members, **role)
        body = SubscriptionSerializer(self.get_queryset().get(pk=sub.pk), context=self.get_serializer_context()).data
        return Response(_with_run(request, dict(body), run), status=status.HTTP_201_CREATED)
