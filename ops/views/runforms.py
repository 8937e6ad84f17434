"""Forms built from the runbook registry's parameter definitions.

A runbook declares its parameters once (``ops/runbooks/registry.py``); the
"start a run" page and the schedule form render them generically here, and the
service (``start_run`` / the schedule services) has the last word on whether the
values make sense (no such batch, unknown cloud, ...).
"""
from types import SimpleNamespace

from django import forms
from django.core.exceptions import ValidationError

from ..runbooks import registry
from ..runbooks.base import param_named_in
from . import offered


def runbooks() -> list:
    """The runbooks operators start, as ``SimpleNamespace(kind, title, description, params)``; ``params``
    are the runbook's declarations (dicts: name, label, help, type, default, choices, min, max,
    required), or only its parameter names, which become text fields its ``prepare()`` validates."""
    return [SimpleNamespace(kind=rb.kind, title=rb.title or rb.kind, description=rb.description or "",
                            params=list(getattr(rb, "params", None) or [{"name": n} for n in rb.param_names]))
            for rb in registry.all_runbooks()]


def runbook(kind: str):
    for rb in runbooks():
        if rb.kind == kind:
            return rb
    return None


def kind_choices() -> list[tuple[str, str]]:
    return [(rb.kind, rb.title) for rb in runbooks()]


def _field_for(param):
    ptype = str(param.get("type") or "str").lower()
    required = bool(param.get("required"))
    label = param.get("label") or str(param["name"]).replace("_", " ").capitalize()
    help_text = param.get("help") or ""
    initial = param.get("default")
    choices = param.get("choices")
    common = {"label": label, "help_text": help_text, "initial": initial}
    if choices:
        pairs = [(c, c) if not isinstance(c, (list, tuple)) else (c[0], c[1]) for c in choices]
        if not required:
            # say what an empty choice means: the runbook's default, named when the runbook declares it
            named = dict(pairs).get(initial) if initial not in (None, "") else None
            pairs = [("", f"— default: {named} —" if named else "— the runbook's default —")] + pairs
        return forms.ChoiceField(choices=pairs, required=required, **common)
    if ptype in ("bool", "boolean"):
        return forms.BooleanField(required=False, **common)
    if ptype in ("int", "integer", "number"):
        return forms.IntegerField(required=required, min_value=param.get("min"), max_value=param.get("max"), **common)
    if ptype in ("text", "textarea"):
        return forms.CharField(required=required, widget=forms.Textarea(attrs={"rows": 3}), **common)
    return forms.CharField(required=required, max_length=param.get("max_length") or 500, **common)


def param_fields(rb, prefix: str = "") -> dict:
    return {prefix + str(p["name"]): _field_for(p) for p in rb.params}


def collect_params(rb, cleaned: dict, prefix: str = "") -> dict:
    """Values the operator gave; blanks are left out so the runbook's defaults apply."""
    params = {}
    for p in rb.params:
        name = str(p["name"])
        value = cleaned.get(prefix + name)
        if value is None or value == "":
            continue
        params[name] = value
    return params


class StartRunForm(forms.Form):
    def __init__(self, rb, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runbook = rb
        self.fields.update(param_fields(rb))
        offered.apply(self)

    def params(self) -> dict:
        return collect_params(self.runbook, self.cleaned_data)


def apply_service_error(form, exc: ValidationError, prefix: str = "", field_map: dict | None = None) -> None:
    """Put a service's ValidationError next to the fields it names (else on top of the form).

    A dict error goes to its key's field; a message under any other key (e.g. the
    schedule service's "params") or a plain message goes to the parameter it starts
    with ("cloud: no cloud named ...", "batch is required ..."), else on top."""
    field_map = field_map or {}
    pairs = []
    if hasattr(exc, "error_dict"):
        for key, errors in exc.error_dict.items():
            for err in errors:
                pairs.extend((key, m) for m in err.messages)
    else:
        pairs = [(None, m) for m in exc.messages]
    for key, message in pairs:
        target = field_map.get(key, prefix + key if key else None) if key else None
        if target not in form.fields:
            target = _field_named_in(form, message, prefix, field_map)
        form.add_error(target, message)


def _field_named_in(form, message: str, prefix: str, field_map: dict):
    """A runbook's message starts with the parameter it is about: show it next to that field."""
    names = set(field_map) | {f[len(prefix):] for f in form.fields if f.startswith(prefix)}
    head = param_named_in(message, names)
    if head is None:
        return None
    name = field_map.get(head, prefix + head)
    return name if name in form.fields else None
