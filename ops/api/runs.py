"""/api/v1/runs/ and /api/v1/runbooks/: the same services and checks as the run pages and the
CLI (ops/services/runs.py, ops/runbooks/registry.py); views only check input and call them."""
import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import livetail
from ..authz import restrict
from ..models import Run, Step
from ..patching import report as patch_report
from ..runbooks import registry
from ..services import runs as run_services
from . import serializers as s
from .errors import Conflict
from .permissions import may

STATE_CONFLICTS = {"conflict", "final", "state"}  # the run's state, not the request, refuses it: 409


def refuse_unknown_query(request, allowed) -> None:
    """A misspelt filter (?stat=running) is refused, not ignored (which would list everything)."""
    unknown = sorted(k for k in request.query_params if k not in allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or "none"
        raise exceptions.ValidationError({k[:60]: [f"unknown query parameter; this endpoint takes {expected}"]
                                          for k in unknown[:10]})


def call_service(fn, *args):
    """A service's refusal as the API's: 409 when the run's state refuses it, else 400 naming the field."""
    try:
        return fn(*args)
    except DjangoValidationError as exc:
        codes = {e.code for e in exc.error_list} if hasattr(exc, "error_list") else set()
        if codes & STATE_CONFLICTS:
            raise Conflict(" ".join(exc.messages)) from None
        raise


def accepted(request, run, detail: str) -> Response:
    body = {"run": run.pk, "url": request.build_absolute_uri(reverse("api:run-detail", args=[run.pk])),
            "page_url": request.build_absolute_uri(reverse("ops:run", args=[run.pk])), "detail": detail}
    return Response(body, status=status.HTTP_202_ACCEPTED)


def runbook_choices():
    return [(rb.kind, rb.title) for rb in registry.all_runbooks()]


class AnyCaseChoiceField(django_filters.fields.ChoiceField):
    def to_python(self, value):
        return super().to_python(value).strip().lower()  # as the runs page: ?state=WAITING works


class AnyCaseChoiceFilter(django_filters.ChoiceFilter):
    field_class = AnyCaseChoiceField


class RunFilter(django_filters.FilterSet):
    state = AnyCaseChoiceFilter(choices=Run.State.choices, help_text="Only runs in this state.")
    runbook = AnyCaseChoiceFilter(field_name="kind", choices=runbook_choices, help_text="Only runs of this runbook.")

    class Meta:
        model = Run
        fields = ("state", "runbook")


ERRORS = {400: s.ErrorSerializer, 401: s.ErrorSerializer, 403: s.ErrorSerializer, 404: s.ErrorSerializer}
ACTION_ERRORS = {**ERRORS, 409: OpenApiResponse(s.ErrorSerializer, description="The run's state refuses it.")}


def run_action(summary, request=None):
    return extend_schema(summary=summary, request=request, responses={202: s.RunAcceptedSerializer, **ACTION_ERRORS})


@extend_schema_view(
    list=extend_schema(summary="Runs you may see, newest first", responses={200: s.RunSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(summary="A run with its steps", responses={200: s.RunDetailSerializer, **ERRORS}),
)
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    filterset_class = RunFilter
    queryset = Run.objects.none()  # for the schema; get_queryset decides

    def get_queryset(self):
        qs = restrict(Run.objects.all(), self.request.user, "run.view").select_related("created_by", "schedule")
        if self.action == "retrieve":
            qs = qs.prefetch_related(Prefetch("steps", Step.objects.order_by("index")))
        return qs

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            raise exceptions.NotFound(f"No run {str(self.kwargs.get('pk'))[:40]!r} that you may see.") from None

    def get_serializer_class(self):
        return s.RunDetailSerializer if self.action == "retrieve" else s.RunSerializer

    ACTIONS = {"create": "run.start", "cancel": "run.operate", "retry": "run.operate", "skip": "run.operate",
               "abort": "run.operate"}

    def get_permissions(self):
        if self.action in self.ACTIONS:
            return [*super().get_permissions(), may(self.ACTIONS[self.action])]
        return super().get_permissions()

    def list(self, request, *args, **kwargs):
        refuse_unknown_query(request, {"state", "runbook", *self.paginator.query_params})
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Start a runbook (operators)", request=s.StartRunSerializer,
                   responses={202: s.RunAcceptedSerializer, **ACTION_ERRORS})
    def create(self, request):
        data = s.StartRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rb = registry.get(data.validated_data["runbook"])
        try:
            run = call_service(run_services.start_run, request.user, rb.kind, data.validated_data["params"])
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"params": s.params_errors(exc, rb)}) from None
        return accepted(request, run, f"Run {run.pk} ({rb.title}) queued.")

    @extend_schema(summary="A run's events after a seq", parameters=[OpenApiParameter(
        "after", OpenApiTypes.INT, description="The last seq you have (0: from the start); at most the run's last_seq.")],
        responses={200: s.EventsSerializer, **ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def events(self, request, pk=None):
        run = self.get_object()
        refuse_unknown_query(request, {"after"})
        raw = request.query_params.get("after", "0")
        after = livetail.parse_cursor(raw)
        problem = (f"must be a non-negative integer, got {raw[:40]!r}" if after is None
                   else livetail.beyond_last(after, run.pk, run.last_seq))
        if problem:
            raise exceptions.ValidationError({"after": [problem]})
        return Response(livetail.events_payload(run.pk, after))

    @extend_schema(summary="A patch run's report (per node: result, updates with result codes, VMs moved and "
                           "returned, saved VMs' downtime, reboot, left in maintenance); final once the run ended",
                   responses={200: OpenApiTypes.OBJECT, **ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def report(self, request, pk=None):
        run = self.get_object()
        refuse_unknown_query(request, set())
        if run.kind != "patch-cluster":
            raise exceptions.NotFound(f"Run {run.pk} is a {run.kind} run: only patch runs have a report.")
        return Response(patch_report.build(run).as_dict())

    @run_action("Cancel a run (operators): it stops after the current steps, then cleans up")
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        run = self.get_object()
        refuse_body(request)
        call_service(run_services.cancel_run, request.user, run)
        return accepted(request, run, f"Cancel requested: run {run.pk} stops after the current steps, then cleans up.")

    @run_action("Abort a run waiting for the operator (operators): it cleans up, then fails")
    @action(detail=True, methods=["post"], filter_backends=[])
    def abort(self, request, pk=None):
        run = self.get_object()
        refuse_body(request)
        call_service(run_services.abort_run, request.user, run)
        return accepted(request, run, f"Run {run.pk} aborted; its clean-up runs now.")

    @run_action("Run a failed step again (operators)", s.StepRefSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def retry(self, request, pk=None):
        step = self._step(request)
        call_service(run_services.retry_step, request.user, step)
        return accepted(request, step.run, f"Retrying step {step.index} ({step}).")

    @run_action("Skip a failed step and go on (operators)", s.StepRefSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def skip(self, request, pk=None):
        step = self._step(request)
        call_service(run_services.skip_step, request.user, step)
        return accepted(request, step.run, f"Skipped step {step.index} ({step}); the run goes on.")

    def _step(self, request):
        run = self.get_object()
        data = s.StepRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        step = Step.objects.filter(run=run, index=data.validated_data["step"]).select_related("run").first()
        if step is None:
            raise exceptions.ValidationError({"step": [
                f"run {run.pk} has no step {data.validated_data['step']} (steps are numbered as on the run page)"]})
        return step


def refuse_body(request) -> None:
    """cancel and abort take no fields: one sent anyway is refused, not ignored."""
    s.EmptySerializer(data=request.data if request.data else {}).is_valid(raise_exception=True)


@extend_schema(summary="The runbooks an operator can start, with their parameters",
               responses={200: s.RunbookSerializer(many=True), **ERRORS})
class RunbookList(generics.ListAPIView):
    serializer_class = s.RunbookSerializer

    def get_permissions(self):
        return [*super().get_permissions(), may("run.start")]
    filter_backends = []

    def get_queryset(self):
        return registry.all_runbooks()

    def list(self, request, *args, **kwargs):
        refuse_unknown_query(request, set(self.paginator.query_params))
        return super().list(request, *args, **kwargs)
