"""CLIXML for the simulator: contract values to XML (fast path) and back.

Output objects are serialized here by hand rather than through psrpcore's
generic serializer: it is ~10x faster, which matters when a pipeline returns
thousands of VMs. Everything else the PSRP layer sends (states, error, progress
and warning records) goes through psrpcore.

``from_ps`` turns the values psrpcore deserialized from the client (PSString,
PSDict, PSGuid, ...) into the plain Python values of the contract.
"""
from __future__ import annotations

import base64
import datetime as dt
import enum
import math
import re
import typing
import uuid

from psrpcore.types import PSObject, PSSecureString
from psrpcore.types._serializer import _serialize_duration, _serialize_string

from .contract import SimEnum, SimObject

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UTC = dt.timezone.utc
_MAX_DEPTH = 32

# Chars that PSRP escapes as _xHHHH_ (control chars, surrogates, astral plane) and the
# literal "_x" which must be escaped so it is not read back as an escape sequence.
_NEEDS_PS_ESCAPE = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\udfff\U00010000-\U0010ffff]|_[xX]")

_LIST_TN = ("System.Object[]", "System.Array", "System.Object")
_DICT_TN = ("System.Collections.Hashtable", "System.Object")
_ENUM_TAIL = ("System.Enum", "System.ValueType", "System.Object")
_CUSTOM_TN = ("System.Management.Automation.PSCustomObject", "System.Object")


def _text(value: str) -> str:
    """A .NET string as CLIXML element text (PSRP escapes, then XML escapes)."""
    if _NEEDS_PS_ESCAPE.search(value):
        value = _serialize_string(value)
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


_attr_cache: dict[str, str] = {}
_tn_cache: dict[tuple, str] = {}


def _name_attr(name: str) -> str:
    attr = _attr_cache.get(name)
    if attr is None:
        attr = ' N="%s"' % _text(str(name)).replace('"', "&quot;")
        if len(_attr_cache) < 10000:
            _attr_cache[name] = attr
    return attr


def _datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    elif value.utcoffset():
        value = value.astimezone(_UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _double(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value).upper()
    return text[:-2] if text.endswith(".0") else text


class _Writer:
    __slots__ = ("out", "ref", "tn")

    def __init__(self) -> None:
        self.out: list[str] = []
        self.ref = 0
        self.tn: dict[tuple, int] = {}

    def open_obj(self, n: str, type_names: typing.Sequence[str]) -> None:
        out = self.out
        out.append('<Obj%s RefId="%d">' % (n, self.ref))
        self.ref += 1
        if type_names:
            key = tuple(type_names)
            tn_id = self.tn.get(key)
            if tn_id is not None:
                out.append('<TNRef RefId="%d" />' % tn_id)
            else:
                tn_id = self.tn[key] = len(self.tn)
                body = _tn_cache.get(key)
                if body is None:
                    body = "".join("<T>%s</T>" % _text(str(name)) for name in key)
                    if len(_tn_cache) < 10000:
                        _tn_cache[key] = body
                out.append('<TN RefId="%d">%s</TN>' % (tn_id, body))

    def value(self, v: typing.Any, n: str = "", depth: int = 0) -> None:  # noqa: C901 - a type switch
        out = self.out
        t = type(v)
        if v is None:
            out.append("<Nil%s />" % n)
        elif t is str:
            out.append("<S%s>%s</S>" % (n, _text(v)))
        elif t is bool:
            out.append("<B%s>%s</B>" % (n, "true" if v else "false"))
        elif t is int or (isinstance(v, int) and not isinstance(v, enum.Enum)):
            v = int(v)
            if _INT32_MIN <= v <= _INT32_MAX:
                out.append("<I32%s>%d</I32>" % (n, v))
            elif _INT64_MIN <= v <= _INT64_MAX:
                out.append("<I64%s>%d</I64>" % (n, v))
            elif 0 <= v < 2**64:
                out.append("<U64%s>%d</U64>" % (n, v))
            else:
                out.append("<D%s>%d</D>" % (n, v))
        elif t is SimObject or isinstance(v, SimObject):
            if depth >= _MAX_DEPTH:
                out.append("<S%s>%s</S>" % (n, _text(v.to_string or "")))
                return
            type_names = v.type_names or _CUSTOM_TN
            self.open_obj(n, type_names)
            if v.to_string:
                out.append("<ToString>%s</ToString>" % _text(v.to_string))
            if v.properties:
                first = type_names[0]
                # Note properties of custom objects (Select-Object output) are extended members (MS),
                # the properties of a real .NET object (a VMM VM) adapted ones (Props).
                tag = "MS" if first == _CUSTOM_TN[0] or first.startswith("Selected.") else "Props"
                out.append("<%s>" % tag)
                for key, prop in v.properties.items():
                    self.value(prop, _name_attr(key), depth + 1)
                out.append("</%s>" % tag)
            out.append("</Obj>")
        elif t is SimEnum or isinstance(v, SimEnum):
            self.open_obj(n, (v.type_name, *_ENUM_TAIL))
            out.append("<ToString>%s</ToString><I32>%d</I32></Obj>" % (_text(v.name), int(v.value)))
        elif isinstance(v, float):
            out.append("<Db%s>%s</Db>" % (n, _double(v)))
        elif isinstance(v, str):
            out.append("<S%s>%s</S>" % (n, _text(str.__str__(v))))
        elif isinstance(v, uuid.UUID):
            out.append("<G%s>%s</G>" % (n, v))
        elif isinstance(v, dt.datetime):
            out.append("<DT%s>%s</DT>" % (n, _datetime(v)))
        elif isinstance(v, dt.timedelta):
            out.append("<TS%s>%s</TS>" % (n, _serialize_duration(v)))
        elif isinstance(v, (bytes, bytearray)):
            out.append("<BA%s>%s</BA>" % (n, base64.b64encode(bytes(v)).decode()))
        elif isinstance(v, (list, tuple, set, frozenset)):
            if depth >= _MAX_DEPTH:
                out.append("<Nil%s />" % n)
                return
            self.open_obj(n, _LIST_TN)
            out.append("<LST>")
            for item in v:
                self.value(item, "", depth + 1)
            out.append("</LST></Obj>")
        elif isinstance(v, dict):
            if depth >= _MAX_DEPTH:
                out.append("<Nil%s />" % n)
                return
            self.open_obj(n, _DICT_TN)
            out.append("<DCT>")
            for key, item in v.items():
                out.append("<En>")
                self.value(key, ' N="Key"', depth + 1)
                self.value(item, ' N="Value"', depth + 1)
                out.append("</En>")
            out.append("</DCT></Obj>")
        elif isinstance(v, enum.Enum):
            self.value(SimEnum(f"{type(v).__module__}.{type(v).__name__}", v.name, int(v.value)), n, depth)
        else:
            out.append("<S%s>%s</S>" % (n, _text(str(v))))


def dumps(value: typing.Any) -> bytes:
    """Serialize one contract value to a CLIXML element (UTF-8 bytes)."""
    writer = _Writer()
    writer.value(value)
    return "".join(writer.out).encode("utf-8")


def to_psrpcore(value: typing.Any) -> typing.Any:
    """A contract value as something psrpcore's serializer handles (error targets; rare, slow path)."""
    if isinstance(value, SimEnum):
        return value.name
    if isinstance(value, SimObject):
        from psrpcore.types import add_note_property

        obj = PSObject()
        obj.PSObject.type_names = list(value.type_names) or list(_CUSTOM_TN)
        obj.PSObject.to_string = value.to_string
        for key, prop in value.properties.items():
            add_note_property(obj, str(key), to_psrpcore(prop))
        return obj
    if isinstance(value, (list, tuple)):
        return [to_psrpcore(v) for v in value]
    if isinstance(value, dict):
        return {to_psrpcore(k): to_psrpcore(v) for k, v in value.items()}
    return value


def from_ps(value: typing.Any, depth: int = 0) -> typing.Any:
    """A value psrpcore deserialized from the client, as a plain contract value."""
    if value is None or value is True or value is False:
        return value
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, PSSecureString):
        return str.__str__(value.decrypt())
    if isinstance(value, enum.Enum):
        return SimEnum(f"{type(value).__module__}.{type(value).__name__}", value.name, int(value.value))
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=value.int)
    if isinstance(value, dt.datetime):
        plain = dt.datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond,
            tzinfo=value.tzinfo or _UTC,
        )
        return plain.astimezone(_UTC)
    if isinstance(value, dt.timedelta):
        return dt.timedelta(days=value.days, seconds=value.seconds, microseconds=value.microseconds)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict):
        return {from_ps(k, depth + 1): from_ps(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_ps(v, depth + 1) for v in value]
    if isinstance(value, PSObject):
        # A complex object the client sent back: PowerShell would see a property bag typed
        # "Deserialized.<type>", which VMM cmdlets refuse to bind. The engine decides.
        meta = value.PSObject
        props: dict[str, typing.Any] = {}
        for prop in list(meta.adapted_properties) + list(meta.extended_properties):
            try:
                props[prop.name] = from_ps(prop.get_value(value), depth + 1)
            except Exception:  # a script property or similar we cannot evaluate
                props[prop.name] = None
        names = [t if t.startswith("Deserialized.") else "Deserialized." + t for t in meta.type_names]
        return SimObject(type_names=names, properties=props, to_string=str(meta.to_string or ""))
    return value
