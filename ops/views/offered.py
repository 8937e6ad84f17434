"""Select lists for runbook parameters that name something that exists: the VMM and
SCOM connections, the clouds and the batches of the inventory.

The start and schedule forms (ops/views/runforms.py, ops/views/schedules.py) offer
these instead of free text, so an operator picks a connection rather than relying on
"the only enabled one" (which a second connection would make ambiguous). The runbook's
``prepare`` still has the last word: a value posted that the list does not hold is
judged by it against the fabric, and refused with its own message.
"""
from collections import Counter

from django import forms
from django.db.models import Count

from ..models import Cloud, ServerConnection, VirtualMachine

DEFAULT_PROPERTY = "Custom1"


class OfferedChoiceField(forms.ChoiceField):
    """A select whose list is an offer: the service judges the value (and says why it is wrong)."""

    def valid_value(self, value):
        return True


def _connections(kind: str) -> tuple[list, str]:
    """(choices, the one to preselect): the enabled connections of ``kind``; with several,
    the operator must choose (an empty first entry); with one, it is preselected."""
    conns = list(ServerConnection.objects.filter(kind=kind, enabled=True).order_by("name"))
    pairs = [(c.name, f"{c.name} ({c.host})") for c in conns]
    label = {"vmm": "VMM", "scom": "SCOM"}[kind]
    if len(conns) == 1:
        return pairs, conns[0].name
    if not conns:
        return [("", f"— no enabled {label} connection: an admin adds one under Connections —")], ""
    return [("", f"— choose a {label} connection —")] + pairs, ""


def _clouds() -> list:
    rows = Cloud.objects.values("name").annotate(n=Count("vms")).order_by("name")
    seen, pairs = set(), []
    for row in rows:
        if row["name"].lower() not in seen:
            seen.add(row["name"].lower())
            pairs.append((row["name"], f"{row['name']} ({row['n']} VMs)"))
    return pairs


def _batches(prop: str) -> list:
    counts = Counter()
    for custom in VirtualMachine.objects.values_list("custom", flat=True).iterator(chunk_size=2000):
        value = str((custom or {}).get(prop) or "").strip()
        if value:
            counts[value] += 1
    values = sorted(counts.items(), key=lambda r: (len(r[0]), r[0]))
    return [(b, f"{b} ({n} VM{'s' if n != 1 else ''})") for b, n in values]


def _keep_current(pairs: list, current) -> list:
    """A value saved earlier (or posted) that the list no longer holds is still shown, selected."""
    if current not in (None, "") and str(current) not in {str(v) for v, _ in pairs}:
        return pairs + [(str(current), f"{current} (not in the inventory)")]
    return pairs


def apply(form, prefix: str = "") -> None:
    """Turn the form's connection, scom, cloud and batch fields into select lists of what exists."""
    def current(name):
        key = prefix + name
        if form.is_bound:
            return form.data.get(key)
        return form.initial.get(key, form.fields[key].initial if key in form.fields else None)

    def replace(name, pairs, initial=None, required=False):
        key = prefix + name
        old = form.fields[key]
        form.fields[key] = OfferedChoiceField(choices=_keep_current(pairs, current(name)), required=required,
                                              label=old.label, help_text=old.help_text,
                                              initial=initial if initial not in (None, "") else old.initial)

    fields = form.fields
    if prefix + "connection" in fields:
        pairs, only = _connections("vmm")
        replace("connection", pairs, only)
        fields[prefix + "connection"].help_text = "The VMM server the run works on. A schedule keeps this choice."
    if prefix + "scom" in fields:
        pairs, only = _connections("scom")
        pairs = [p for p in pairs if p[0] or len(pairs) > 1] + [("none", "none: no maintenance mode")]
        replace("scom", pairs, only or ("none" if len(pairs) == 1 else ""))   # keeps the runbook's own help
    if prefix + "cloud" in fields:
        old = fields[prefix + "cloud"]
        replace("cloud", [("", "— every cloud —")] + _clouds())
        fields[prefix + "cloud"].help_text = old.help_text
    if prefix + "batch" in fields:
        prop = (current("property") or DEFAULT_PROPERTY).strip() or DEFAULT_PROPERTY
        batches = _batches(prop)
        if batches:   # before the first inventory read there is nothing to offer: the field stays typed
            replace("batch", [("", f"— choose a batch ({prop}) —")] + batches, required=fields[prefix + "batch"].required)
            fields[prefix + "batch"].help_text = (f"The batches the inventory knows by {prop} (Fabric → Sync now reads "
                                                  "it again).")
