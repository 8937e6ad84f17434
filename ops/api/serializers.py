"""What the API says about runs, and what it accepts to start and steer them."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Run, Step
from ..runbooks import registry
from ..runbooks.base import param_named_in
from .fields import StrictSerializer, WholeNumberField, check_text

PARAM_TYPES = (str, int, bool)


class StepSerializer(serializers.ModelSerializer):
    index = serializers.IntegerField(read_only=True, help_text="The step's # on the run page; retry and skip name it.")
    state = serializers.ChoiceField(choices=Step.State.choices, read_only=True)

    class Meta:
        model = Step
        fields = ("index", "phase", "action", "target", "compensation", "state", "progress", "attempts", "error",
                  "started_at", "finished_at")
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    runbook = serializers.CharField(source="kind", read_only=True, help_text="The runbook's name, e.g. batch-checkpoint.")
    state = serializers.ChoiceField(choices=Run.State.choices, read_only=True)
    phase_label = serializers.SerializerMethodField(help_text='"3/6 Stop the running VMs", as the run page says.')
    progress = serializers.IntegerField(source="shown_progress", read_only=True, help_text="0-100.")
    outcome = serializers.CharField(source="message", read_only=True,
                                    help_text="How the run ended, or why it waits for the operator.")
    created_by = serializers.SerializerMethodField(help_text="Who started it; null for a schedule's run.")
    schedule = serializers.SerializerMethodField(help_text="The schedule that started it, if any.")
    url = serializers.SerializerMethodField(help_text="This run in the API.")
    page_url = serializers.SerializerMethodField(help_text="This run's live page in the browser.")

    class Meta:
        model = Run
        fields = ("id", "url", "page_url", "runbook", "title", "state", "phase", "phase_label", "progress", "outcome",
                  "params", "created_by", "schedule", "cancel_requested", "created_at", "started_at", "finished_at",
                  "last_seq")
        read_only_fields = fields

    def get_created_by(self, run) -> str | None:
        return run.created_by.get_username() if run.created_by else None

    def get_phase_label(self, run) -> str:
        return registry.run_phase_label(run)

    def get_schedule(self, run) -> str | None:
        return run.schedule.name if run.schedule else None

    def get_url(self, run) -> str:
        return _absolute(self.context, reverse("api:run-detail", args=[run.pk]))

    def get_page_url(self, run) -> str:
        return _absolute(self.context, reverse("ops:run", args=[run.pk]))


class RunDetailSerializer(RunSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = RunSerializer.Meta.fields + ("steps",)
        read_only_fields = fields


def _absolute(context, path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


@extend_schema_field({"type": "object", "additionalProperties": {"oneOf": [
    {"type": "string", "maxLength": 500}, {"type": "integer"}, {"type": "boolean"}]},
    "example": {"batch": "3", "cloud": "Gold"}})
class ParamsField(serializers.DictField):
    """A runbook's parameters: names as the CLI's key=value, values strings, numbers or true/false."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(f"must be an object of parameter names to values, not {type(data).__name__}")
        out, errors = {}, {}
        for key, value in data.items():
            if value is None:
                continue  # the runbook's default
            if not isinstance(value, PARAM_TYPES) or isinstance(value, float):
                errors[key] = [f"must be a string, a whole number or true/false, not {type(value).__name__}"]
                continue
            try:
                out[key] = check_text(value, key) if isinstance(value, str) else value
            except serializers.ValidationError as exc:
                errors[key] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return out


class StartRunSerializer(StrictSerializer):
    """A runbook and its parameters: the same checks as the start page and `manage.py runbook start`."""

    runbook = serializers.CharField(max_length=64, help_text="The runbook's name: GET /api/v1/runbooks/ lists them.")
    params = ParamsField(required=False, default=dict, help_text="The runbook's parameters, as the CLI's key=value.")

    def validate_runbook(self, value):
        try:
            return registry.get(value).kind
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def validate(self, attrs):
        rb = registry.get(attrs["runbook"])
        unknown = sorted(set(attrs["params"]) - set(rb.param_names))
        if unknown:
            raise serializers.ValidationError({"params": {k[:60]: [
                f"{rb.kind} has no parameter {k[:60]!r}; its parameters: {', '.join(rb.param_names)}"] for k in unknown[:10]}})
        return attrs


class StepRefSerializer(StrictSerializer):
    """A failed step of a run waiting for the operator."""

    step = WholeNumberField(min_value=0, max_value=10**6, help_text="The failed step's # (its index), as on the run page.")


class EmptySerializer(StrictSerializer):
    """An action that takes no fields."""


class RunAcceptedSerializer(serializers.Serializer):
    run = serializers.IntegerField(help_text="The run's id.")
    url = serializers.URLField(help_text="The run in the API: GET it for its state and progress.")
    page_url = serializers.URLField(help_text="The run's live page in the browser.")
    detail = serializers.CharField(help_text="What happens now.")


def params_errors(exc: DjangoValidationError, rb) -> dict[str, list[str]]:
    """A runbook's refusal, each message under the parameter it names (ops/runbooks/base.py)."""
    out: dict[str, list[str]] = {}
    for message in exc.messages:
        out.setdefault(param_named_in(message, rb.param_names) or "non_field_errors", []).append(message)
    return out


class RunbookParamSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.CharField(help_text="str, int or bool.")
    required = serializers.BooleanField()
    default = serializers.JSONField(allow_null=True)
    choices = serializers.ListField(child=serializers.CharField(), allow_null=True)
    help = serializers.CharField()


class RunbookSerializer(serializers.Serializer):
    name = serializers.CharField(source="kind")
    title = serializers.CharField()
    description = serializers.CharField()
    params = serializers.SerializerMethodField()

    @extend_schema_field(RunbookParamSerializer(many=True))
    def get_params(self, rb):
        out = []
        for p in rb.params:
            choices = p.get("choices")
            out.append({"name": p["name"], "label": p.get("label") or p["name"], "type": p.get("type") or "str",
                        "required": bool(p.get("required")), "default": p.get("default"),
                        "choices": [c[0] if isinstance(c, (list, tuple)) else c for c in choices] if choices else None,
                        "help": p.get("help") or ""})
        return out


class EventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    at = serializers.DateTimeField()
    level = serializers.CharField()
    message = serializers.CharField()
    progress = serializers.IntegerField(allow_null=True, help_text="The run's progress after this event.")
    step_id = serializers.IntegerField(allow_null=True)


class EventsSerializer(serializers.Serializer):
    """The same body as the run page's events endpoint (ops/views/runs.py)."""

    run = serializers.DictField(help_text="The run's state, phase and progress now.")
    events = EventSerializer(many=True)
    steps = serializers.ListField(child=serializers.DictField())
    last_seq = serializers.IntegerField(help_text="Ask again with ?after=<last_seq> for what came next.")
    more = serializers.BooleanField(help_text="True when more events are waiting: ask again at once.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was refused and why; nothing was changed.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text="400 only: each bad field (dotted: params.batch) with its messages.")


