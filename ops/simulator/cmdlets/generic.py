"""Generic PowerShell cmdlets: Select-Object, ConvertTo-Json, Out-Null, Get-Variable.

ConvertTo-Json behaves like Windows PowerShell 5.1 (what a VMM server runs):
- all pipeline input is collected; one object gives a JSON object, several a JSON
  array, none gives no output at all;
- enums serialize as their integer value (use a ``...String`` property or select the
  object itself if you want names); Guids as strings; DateTimes as ``"\\/Date(ms)\\/"``
  (milliseconds since the Unix epoch, UTC); TimeSpans as an object with Ticks, Days,
  Hours, Minutes, Seconds, Milliseconds, TotalSeconds, TotalMilliseconds;
- ``-Depth`` (default 2) limits nesting: an object nested deeper than Depth becomes its
  ToString; ``-Compress`` removes whitespace. Non-ASCII text is written as is.
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import re
import uuid

from .. import errors as E
from ..contract import PSError, SimEnum, SimObject
from ..language import get_member, ps_str
from .base import P, cmdlet

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_DATE_MARK = "\x00SLIPWAY_DATE:"
_DATE_RE = re.compile(r'"\\u0000SLIPWAY_DATE:(-?\d+)\\u0000"')


class SelectedObject(SimObject):
    """A PSCustomObject made by Select-Object; its ToString (``@{A=1; B=2}``) is computed on demand."""

    def __init__(self, type_names, properties, to_string=None):
        self.type_names = type_names
        self.properties = properties
        self._to_string = to_string

    @property
    def to_string(self):
        if self._to_string is None:
            self._to_string = "@{" + "; ".join(f"{k}={ps_str(v)}" for k, v in self.properties.items()) + "}"
        return self._to_string

    @to_string.setter
    def to_string(self, value):
        self._to_string = value


def _prop(obj, name):
    if isinstance(obj, SimObject):
        props = obj.properties
        if name in props:
            return props[name]
        return obj.get(name)
    return get_member(obj, name)


@cmdlet("Select-Object", [P("Property", "any", position=0), P("ExpandProperty"), P("First", "int"),
                          P("Last", "int"), P("Skip", "int"), P("InputObject", "any", pipeline=True)], collect=True)
def select_object(ctx, a, items):
    if "InputObject" in a:
        items = [a["InputObject"]]
    if a.get("Skip"):
        items = items[a["Skip"]:]
    if a.get("First") is not None:
        items = items[:a["First"]]
    if a.get("Last") is not None:
        items = items[-a["Last"]:] if a["Last"] else []
    props = a.get("Property")
    if props is not None and not isinstance(props, (list, tuple)):
        props = [props]
    names = []
    for p in props or []:
        if isinstance(p, dict):
            raise PSError("Calculated properties are not supported by this simulator.", error_id="NotSupported",
                          category="InvalidArgument", exception_type="System.NotSupportedException")
        names.append(ps_str(p))
    expand = a.get("ExpandProperty")
    out = []
    type_cache: dict = {}
    for item in items:
        if expand:
            v = _prop(item, expand)
            if v is None and not (isinstance(item, SimObject) and _has(item, expand)):
                ctx.error(PSError(f'Property "{expand}" cannot be found.', error_id="ExpandPropertyNotFound",
                                  category="InvalidArgument", target=item,
                                  exception_type="System.Management.Automation.PSArgumentException"))
                continue
            out.extend(v if isinstance(v, list) else [v])
            continue
        if not names:
            out.append(item)
            continue
        wanted = _expand_names(item, names)
        base = item.type_names[0] if isinstance(item, SimObject) and item.type_names else _net(item)
        tn = type_cache.get(base)
        if tn is None:
            tn = type_cache[base] = [f"Selected.{base}", "System.Management.Automation.PSCustomObject", "System.Object"]
        out.append(SelectedObject(tn, {n: _prop(item, n) for n in wanted}))
    return out


def _has(obj, name):
    return any(k.lower() == name.lower() for k in obj.properties)


def _net(item):
    return E.dotnet_type(item)


def _expand_names(item, names):
    if not any("*" in n or "?" in n for n in names):
        return names
    keys = list(item.properties) if isinstance(item, SimObject) else []
    out = []
    for n in names:
        if "*" in n or "?" in n:
            out += [k for k in keys if fnmatch.fnmatchcase(k.lower(), n.lower()) and k not in out]
        elif n not in out:
            out.append(n)
    return out


def to_json_value(v, level: int, depth: int):
    t = type(v)
    if v is None or t is str or t is bool or t is int:
        return v
    if t is float:
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if t is SimEnum or isinstance(v, SimEnum):
        return v.value
    if t is uuid.UUID:
        return str(v)
    if isinstance(v, _dt.datetime):
        d = v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc)
        return f"{_DATE_MARK}{int((d - _EPOCH).total_seconds() * 1000)}\x00"
    if isinstance(v, _dt.timedelta):
        secs = v.total_seconds()
        return {"Ticks": int(secs * 10_000_000), "Days": v.days, "Hours": v.seconds // 3600,
                "Milliseconds": v.microseconds // 1000, "Minutes": (v.seconds // 60) % 60,
                "Seconds": v.seconds % 60, "TotalDays": secs / 86400, "TotalHours": secs / 3600,
                "TotalMilliseconds": secs * 1000, "TotalMinutes": secs / 60, "TotalSeconds": secs}
    if isinstance(v, SimObject):
        if level > depth:
            return v.to_string
        out = {}
        for k, x in v.properties.items():
            tx = type(x)
            out[k] = x if tx in _LEAF else to_json_value(x, level + 1, depth)
        return out
    if isinstance(v, dict):
        if level > depth:
            return "System.Collections.Hashtable"
        return {str(k): to_json_value(x, level + 1, depth) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if level > depth:
            return " ".join(ps_str(x) for x in v)
        return [to_json_value(x, level + 1, depth) for x in v]
    if isinstance(v, int):
        return int(v)
    return str(v)


def _default(v):
    # leaf values left in place by to_json_value (json's C encoder calls this for them)
    if type(v) is uuid.UUID:
        return str(v)
    if isinstance(v, SimEnum):
        return v.value
    if isinstance(v, _dt.datetime):
        return to_json_value(v, 0, 0)
    return str(v)


_LEAF = {str, int, bool, type(None), uuid.UUID, SimEnum, _dt.datetime}


def to_json(items, depth=2, compress=False) -> str:
    value = items[0] if len(items) == 1 else items
    data = to_json_value(value, 0, depth) if len(items) == 1 else [to_json_value(x, 1, depth) for x in items]
    if compress:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_default)
    else:
        text = json.dumps(data, ensure_ascii=False, indent=4, default=_default)
    if _DATE_MARK[1:] in text:
        text = _DATE_RE.sub(lambda m: f'"\\/Date({m.group(1)})\\/"', text)
    return text


@cmdlet("ConvertTo-Json", [P("InputObject", "any", position=0, pipeline=True), P("Depth", "int"),
                           P("Compress", "switch"), P("EnumsAsStrings", "switch")], collect=True)
def convert_to_json(ctx, a, items):
    if "InputObject" in a:
        v = a["InputObject"]
        items = [v]
    if not items:
        return []
    depth = a.get("Depth")
    if depth is None:
        depth = 2
    if depth < 0 or depth > 100:
        raise E.validate_set("Depth", depth, ["0..100"])
    if a.get("EnumsAsStrings"):
        raise E.parameter_not_found("EnumsAsStrings")  # PowerShell 5.1 has no such switch
    return [to_json(items, depth, bool(a.get("Compress")))]


@cmdlet("Out-Null", [P("InputObject", "any", pipeline=True)], collect=True)
def out_null(ctx, a, items):
    return []


@cmdlet("Get-Variable", [P("Name", "strings", position=0, many=True), P("ValueOnly", "switch"),
                         P("Scope"), P("Exclude", "strings", many=True)])
def get_variable(ctx, a):
    variables = ctx.session.vars
    names = a.get("Name")
    out = []
    if not names:
        selected = sorted(variables)
    else:
        selected = []
        for n in names:
            if "*" in n or "?" in n:
                selected += sorted(k for k in variables if fnmatch.fnmatchcase(k, n.lower()))
            elif n.lower() in variables:
                selected.append(n.lower())
            else:
                ctx.error(PSError(f"Cannot find a variable with the name '{n}'.",
                                  error_id="VariableNotFound,Microsoft.PowerShell.Commands.GetVariableCommand",
                                  category="ObjectNotFound", target=n,
                                  exception_type="System.Management.Automation.ItemNotFoundException"))
    for key in selected:
        value = ctx.session.refresh(variables[key])
        if a.get("ValueOnly"):
            out.append(value)
        else:
            name = ctx.session.var_names.get(key, key)
            out.append(SimObject(["System.Management.Automation.PSVariable", "System.Object"],
                                 {"Name": name, "Value": value, "Description": "", "Options": "None"}, name))
    return out
