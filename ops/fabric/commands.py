"""Structured commands and the reading of what comes back.

A ``Cmd`` is a cmdlet name plus parameters bound with ``add_parameter``; a
``Script`` is constant text with a ``param()`` block whose values are bound as
parameters. Nothing from a user is ever formatted into PowerShell text.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import typing

from pypsrp.complex_objects import Command, CommandParameter

from . import errors

SWITCH = object()  # a switch parameter: sent with no value


@dataclasses.dataclass
class Cmd:
    name: str
    params: list[tuple[str, typing.Any]] = dataclasses.field(default_factory=list)
    script: bool = False

    def add_to(self, ps) -> None:
        command = _Command(self.name, protocol_version=ps.runspace_pool.protocol_version or "", is_script=self.script)
        command.args = [CommandParameter(name=key, value=None if value is SWITCH else value) for key, value in self.params]
        ps.add_command(command)


class _Command(Command):
    """pypsrp's Command, minus a deep copy per command and statement.

    When a pipeline has several statements pypsrp packs it by deep-copying every
    Command (``Pipeline._get_statements``, a guard against lxml re-parenting),
    which costs ~2 ms of CPU per command: most of the client's time when 50 jobs
    go in one round trip. Its serializer only reads these objects and builds new
    XML elements each time, so a command can stand for its own copy."""

    def __deepcopy__(self, memo):
        return self


def cmd(name: str, **params) -> Cmd:
    """``cmd('Get-SCVMHost', ComputerName=name)``; ``True`` for a switch, ``None``/``False`` leaves it out."""
    bound = []
    for key, value in params.items():
        if value is None or value is False:
            continue
        bound.append((key, SWITCH if value is True else value))
    return Cmd(name, bound)


def script(text: str, **params) -> Cmd:
    """A constant script with a ``param()`` block; values bound as parameters."""
    return Cmd(text, [(k, v) for k, v in params.items()], script=True)


WILDCARD_CHARS = "*?["


def check_literal_name(s, name: str, what: str, cmdlet: str) -> None:
    """VMM's and SCOM's ``-ComputerName`` / ``-Name`` take wildcards: ``hv-a*`` would drain every node of a
    cluster. No host or monitored computer has such a name, so it is simply not found (and nothing is sent)."""
    if any(ch in str(name) for ch in WILDCARD_CHARS):
        raise errors.NotFound(s.settings.name, f"no {what} is named {name} (a {what} name has no * ? or [)",
                              cmdlet=cmdlet, target=str(name), kind=s.settings.kind)


def select_json(*fields: str, depth: int = 2) -> list[Cmd]:
    """``| Select-Object -Property f1,f2 | ConvertTo-Json -Compress -Depth d``: ask for exactly the fields needed."""
    return [cmd("Select-Object", Property=list(fields)), cmd("ConvertTo-Json", Compress=True, Depth=depth)]


def parse_json_output(output: list) -> list[dict]:
    """ConvertTo-Json gives one string (an object, an array, or nothing)."""
    text = "".join(str(part) for part in output).strip()
    if not text:
        return []
    value = json.loads(text)
    if isinstance(value, dict):
        return [value]
    return list(value)


_MS_DATE = re.compile(r"^/Date\((-?\d+)\)/$")


def parse_date(value) -> dt.datetime | None:
    """Windows PowerShell 5.1 writes dates as ``/Date(ms)/``; PowerShell 7 as ISO 8601."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    text = str(value)
    m = _MS_DATE.match(text)
    if m:
        return dt.datetime.fromtimestamp(int(m.group(1)) / 1000, tz=dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def enum_text(value, names: dict[int, str] | None = None) -> str:
    """An enum arrives as its name (PowerShell 7, or a string property) or, from
    Windows PowerShell 5.1's ConvertTo-Json, as its integer value."""
    if value is None:
        return ""
    if isinstance(value, dict):  # an enum object serialized at depth
        value = value.get("value__", value.get("Value", ""))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) and names:
        return names.get(value, str(value))
    return str(value)


def prop(obj, name: str, default=None):
    """Read a property of a pypsrp GenericComplexObject or a dict, case-insensitively."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.lower() == name.lower():
                return value
        return default
    for bag in (getattr(obj, "adapted_properties", None), getattr(obj, "extended_properties", None)):
        if bag:
            for key, value in bag.items():
                if key.lower() == name.lower():
                    return value
    return default


def error_record_fields(record) -> dict:
    """The useful parts of a pypsrp ErrorRecord: the server's message, error id, category."""
    message = ""
    exc = getattr(record, "exception", None)
    if exc is not None:
        message = prop(exc, "Message") or ""
    message = message or getattr(record, "details_message", None) or str(getattr(record, "message", "") or "")
    if not message:
        message = str(record)
    return {
        "message": str(message).strip(),
        "error_id": str(getattr(record, "fq_error", "") or ""),
        "category": str(getattr(record, "reason", "") or ""),
        "category_code": getattr(record, "category", None),
    }


_NOT_FOUND_HINTS = ("NotFound", "CannotFind", "ObjectNotFound", "Unable to find")
_BUSY_HINTS = ("in use by job", "VMBusy", "ObjectInUse", "currently in use")
# Errors in the call itself (unknown cmdlet, unknown or unbindable parameter, parse error): never "not found",
# even though PowerShell files CommandNotFoundException under ObjectNotFound and names NamedParameterNotFound so.
_CALL_ERRORS = ("CommandNotFoundException", "ParameterBindingException", "ParameterBindingValidationException",
                "ParseException")


def map_command_error(fields: dict) -> type[errors.FabricCommandError]:
    if fields["category"] in _CALL_ERRORS or fields["error_id"].split(",")[0] in ("CommandNotFoundException",
                                                                                   "NamedParameterNotFound"):
        return errors.FabricCommandError
    if fields["category"] == "PermissionDenied" or fields.get("category_code") == 18:
        return errors.AccessDenied
    blob = " ".join((fields["message"], fields["error_id"], fields["category"]))
    if any(hint.lower() in blob.lower() for hint in _BUSY_HINTS):
        return errors.VMBusy
    if fields.get("category_code") == 13 or any(h.lower() in blob.lower() for h in _NOT_FOUND_HINTS):
        return errors.NotFound
    return errors.FabricCommandError
