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


def _get(obj, *names, default=None):
    for name in names:
        if isinstance(obj, dict):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return default


def runbooks() -> list:
    """Every runbook kind as ``SimpleNamespace(kind, title, description, params)``."""
    reg = registry
    items = None
    for name in ("all_runbooks", "runbooks", "all"):
        func = getattr(reg, name, None)
        if callable(func):
            items = func()
            break
    if items is None:
        items = getattr(reg, "RUNBOOKS", None) or getattr(reg, "REGISTRY", {})
    if isinstance(items, dict):
        items = list(items.values())
    out = []
    for rb in items:
        params = _get(rb, "params", "parameters", default=None)
        if params is None:  # only names declared: text fields; the runbook's prepare() validates
            params = [{"name": n} for n in (_get(rb, "param_names", default=()) or ())]
        if isinstance(params, dict):
            params = [dict(_as_dict(p), name=_get(p, "name", default=k)) for k, p in params.items()]
        out.append(SimpleNamespace(
            kind=_get(rb, "kind", "name"),
            title=_get(rb, "title", "label", default=None) or _get(rb, "kind", "name"),
            description=_get(rb, "description", "help", default="") or "",
            params=list(params),
        ))
    return sorted(out, key=lambda r: r.kind)


def _as_dict(p):
    return p if isinstance(p, dict) else dict(vars(p)) if hasattr(p, "__dict__") else {}


def runbook(kind: str):
    for rb in runbooks():
        if rb.kind == kind:
            return rb
    return None


def kind_choices() -> list[tuple[str, str]]:
    return [(rb.kind, rb.title) for rb in runbooks()]


def _field_for(param):
    ptype = str(_get(param, "type", "kind", default="str") or "str").lower()
    required = bool(_get(param, "required", default=False))
    label = _get(param, "label", default=None) or str(_get(param, "name")).replace("_", " ").capitalize()
    help_text = _get(param, "help", "help_text", "description", default="") or ""
    initial = _get(param, "default", default=None)
    choices = _get(param, "choices", default=None)
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
        return forms.IntegerField(required=required, min_value=_get(param, "min", "min_value", default=None),
                                  max_value=_get(param, "max", "max_value", default=None), **common)
    if ptype in ("text", "textarea"):
        return forms.CharField(required=required, widget=forms.Textarea(attrs={"rows": 3}), **common)
    return forms.CharField(required=required, max_length=_get(param, "max_length", default=None) or 500, **common)


def param_fields(rb, prefix: str = "") -> dict:
    return {prefix + str(_get(p, "name")): _field_for(p) for p in rb.params}


def collect_params(rb, cleaned: dict, prefix: str = "") -> dict:
    """Values the operator gave; blanks are left out so the runbook's defaults apply."""
    params = {}
    for p in rb.params:
        name = str(_get(p, "name"))
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
