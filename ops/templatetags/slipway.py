from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from .. import authz
from ..runbooks.registry import run_phase_label

register = template.Library()


@register.filter
def phase_label(run) -> str:
    """``{{ run|phase_label }}``: "3/6 Stop the running VMs" (ops/runbooks/registry.py)."""
    return run_phase_label(run)


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def ago(value):
    """'just now' under a minute (timesince alone says '0 minutes'), else '5 minutes ago'."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def kv(mapping):
    """A dict as 'key=value, ...' for people (audit details); nested values compactly."""
    if not isinstance(mapping, dict):
        return "" if mapping in (None, "") else str(mapping)
    parts = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            value = "{" + kv(value) + "}"
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        elif value is None:
            value = "—"
        parts.append(f"{key}={value}")
    return "; ".join(parts)


@register.simple_tag(takes_context=True)
def allowed(context, action, obj=None):
    """``{% allowed "vm.checkpoint" vm as can_checkpoint %}``: ops.authz for one object (``can.x.y`` asks without one)."""
    request = context.get("request")
    return authz.allowed(getattr(request, "user", None), action, obj)
